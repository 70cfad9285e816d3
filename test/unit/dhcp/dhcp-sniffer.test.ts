// DhcpSniffer with a fake capture: real captured frames in, lease events out, malformed frames counted.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeDhcpFrame } from '../../../agent/dhcp/dhcp-frame-codec';
import { encodeDhcpPacket } from '../../../agent/dhcp/dhcp-packet-codec';
import { DhcpSniffer, type CaptureOpener } from '../../../agent/dhcp/dhcp-sniffer';
import type { FrameHandler } from '../../../agent/dhcp/pcap-capture';
import { readPcapFile } from '../../../agent/dhcp/pcap-file';

const FIXTURES = join(__dirname, '../../../../test/fixtures/dhcp');
const frames = (name: string) => readPcapFile(readFileSync(join(FIXTURES, name))).records.map((r) => r.data);

function fakeCapture(): { open: CaptureOpener; send: (f: Buffer, truncated?: boolean) => void; closed: () => boolean } {
  let handler: FrameHandler | undefined;
  let closed = false;
  // Like libpcap, reuse one buffer for every frame, so the sniffer must not keep references into it.
  const shared = Buffer.alloc(65535);
  return {
    open: (_ifname, onFrame) => {
      handler = onFrame;
      return { stats: () => ({ captured: 0, truncated: 0 }), close: () => (closed = true) };
    },
    send: (f, truncated = false) => {
      f.copy(shared);
      handler!(shared, f.length, truncated);
      shared.fill(0xee);
    },
    closed: () => closed,
  };
}

test('captured frames produce lease events; malformed ones are counted per reason and dropped', async (t) => {
  const cap = fakeCapture();
  const sniffer = new DhcpSniffer({ interfaces: ['eth0'], openCapture: cap.open });
  sniffer.start();
  const kinds: string[] = [];
  const iter = sniffer.events()[Symbol.asyncIterator]();
  for (const f of frames('dora.pcap')) cap.send(f);
  cap.send(Buffer.from('garbage'));
  const bad = frames('dora.pcap')[3];
  cap.send(bad.subarray(0, 100));
  const lying = Buffer.from(bad);
  lying[42 + 240 + 1] = 200; // option length beyond the message
  cap.send(lying);
  cap.send(bad, true);
  for (const f of frames('renew.pcap')) cap.send(f);
  for (const f of frames('release.pcap')) cap.send(f);
  sniffer.close();
  for (;;) {
    const r = await iter.next();
    if (r.done) break;
    kinds.push(r.value.kind);
  }
  // release.pcap releases 10.77.0.88, not the .77 bound here, so nothing is released.
  t.deepEqual(kinds, ['bound', 'renewed']);
  const lease = sniffer.leases.get('52:54:00:aa:bb:01')!;
  t.is(lease.address, '10.77.0.77');
  t.is(lease.dnsServers.join(','), '10.77.0.53,10.77.0.54');
  const s = sniffer.stats();
  t.is(s.frames, 11);
  t.is(s.decoded, 7);
  t.is(s.malformed, 4);
  t.like(s.malformedByReason, { TRUNCATED: 3, OVERSIZED: 1, BAD_MAGIC: 0 });
  t.is(s.leaseEvents, 2);
  t.is(s.internalErrors, 0);
  t.true(cap.closed());
});

test('with watched MACs, other clients are ignored', (t) => {
  const cap = fakeCapture();
  const sniffer = new DhcpSniffer({ interfaces: ['eth0'], openCapture: cap.open, watchedMacs: ['02:00:00:00:00:01'] });
  const seen: string[] = [];
  sniffer.onLeaseChange((e) => seen.push(e.mac));
  sniffer.start();
  for (const f of frames('dora.pcap')) cap.send(f);
  const ack = (mac: string) =>
    encodeDhcpFrame({
      srcMac: '02:00:00:00:00:fe',
      srcIp: '10.0.0.1',
      srcPort: 67,
      dstPort: 68,
      payload: encodeDhcpPacket({ xid: 1, chaddr: mac, messageType: 5, yiaddr: '10.0.0.5', serverId: '10.0.0.1', leaseTimeSec: 60 }),
    });
  cap.send(ack('02:00:00:00:00:01'));
  cap.send(ack('02:00:00:00:00:02'));
  t.deepEqual(seen, ['02:00:00:00:00:01']);
  t.is(sniffer.stats().ignored, 5);
  sniffer.watchAll();
  cap.send(ack('02:00:00:00:00:02'));
  t.deepEqual(seen, ['02:00:00:00:00:01', '02:00:00:00:00:02']);
  sniffer.close();
});

test('a capture that cannot open leaves nothing open', (t) => {
  const cap = fakeCapture();
  const sniffer = new DhcpSniffer({
    interfaces: ['eth0', 'missing0'],
    openCapture: (ifname, h) => {
      if (ifname === 'missing0') throw new Error('no such device');
      return cap.open(ifname, h);
    },
  });
  t.throws(() => sniffer.start(), { message: /no such device/ });
  t.true(cap.closed());
});

// Decoder tests driven by real packets captured from dnsmasq and udhcpc (test/fixtures/dhcp), plus the encoder round trip.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DhcpFrameView } from '../../../agent/dhcp/dhcp-frame-codec';
import { decodeDhcpPacket, encodeDhcpPacket, type DhcpMessage } from '../../../agent/dhcp/dhcp-packet-codec';
import { DhcpMessageType as T } from '../../../agent/dhcp/dhcp-option-codes';
import { macNumberToText } from '../../../agent/dhcp/dhcp-wire';
import { readPcapFile, LINKTYPE_ETHERNET } from '../../../agent/dhcp/pcap-file';

const FIXTURES = join(__dirname, '../../../../test/fixtures/dhcp');
// What capture-fixtures.sh configures dnsmasq and udhcpc with.
const GUEST_MAC = '52:54:00:aa:bb:01';
const SERVER = '10.77.0.1';
const FIRST_ADDR = '10.77.0.77';
const SECOND_ADDR = '10.77.0.88';
const DNS = ['10.77.0.53', '10.77.0.54'];
const DOMAIN = 'lab.umbra.test';
const LEASE_SEC = 600;
const T1_SEC = 250;
const T2_SEC = 450;

interface Decoded {
  msg: DhcpMessage;
  vlanId: number;
  srcPort: number;
  dstPort: number;
  srcMac: string;
}

function load(name: string): Decoded[] {
  const pcap = readPcapFile(readFileSync(join(FIXTURES, name)));
  if (pcap.linkType !== LINKTYPE_ETHERNET) throw new Error(`${name}: link type ${pcap.linkType}`);
  const view = new DhcpFrameView();
  return pcap.records.map((r) => {
    view.decode(r.data);
    return {
      msg: view.packet.toMessage(),
      vlanId: view.vlanId,
      srcPort: view.srcPort,
      dstPort: view.dstPort,
      srcMac: macNumberToText(view.srcMac),
    };
  });
}

function assertServerReply(t: import('ava').ExecutionContext, m: DhcpMessage, address: string, renewal = false): void {
  t.is(m.op, 2);
  t.is(m.yiaddr, address);
  t.is(m.chaddr, GUEST_MAC);
  t.is(m.serverId, SERVER);
  t.is(m.subnetMask, '255.255.255.0');
  t.deepEqual(m.routers, [SERVER]);
  t.deepEqual(m.dnsServers, DNS);
  t.is(m.domainName, DOMAIN);
  t.is(m.hostname, 'guest1');
  t.is(m.leaseTimeSec, LEASE_SEC);
  if (renewal) {
    // dnsmasq takes a random fuzz off both timers on renewals, so clients do not renew in step.
    t.true(m.renewalTimeSec! <= T1_SEC && m.renewalTimeSec! > 0);
    t.is(m.rebindingTimeSec! - m.renewalTimeSec!, T2_SEC - T1_SEC);
  } else {
    t.is(m.renewalTimeSec, T1_SEC);
    t.is(m.rebindingTimeSec, T2_SEC);
  }
}

test('DISCOVER/OFFER/REQUEST/ACK from dnsmasq and udhcpc decode to the configured values', (t) => {
  const frames = load('dora.pcap');
  t.deepEqual(frames.map((f) => f.msg.messageType), [T.DISCOVER, T.OFFER, T.REQUEST, T.ACK]);
  const [discover, offer, request, ack] = frames.map((f) => f.msg);
  t.is(discover.op, 1);
  t.is(discover.chaddr, GUEST_MAC);
  t.is(discover.hostname, 'guest1');
  t.is(discover.clientId, '01' + GUEST_MAC.replace(/:/g, ''));
  t.is(discover.ciaddr, '0.0.0.0');
  t.is(frames[0].srcPort, 68);
  t.is(frames[0].dstPort, 67);
  t.is(frames[0].srcMac, GUEST_MAC);
  t.is(frames[0].vlanId, -1);
  assertServerReply(t, offer, FIRST_ADDR);
  t.is(request.requestedAddress, FIRST_ADDR);
  t.is(request.serverId, SERVER);
  t.is(request.xid, discover.xid);
  assertServerReply(t, ack, FIRST_ADDR);
  t.is(ack.xid, request.xid);
  // Options nobody interprets are kept raw: udhcpc's vendor class (60) and parameter list (55).
  const vendor = discover.options.find((o) => o.code === 60);
  t.truthy(vendor);
  t.regex(vendor!.data.toString('latin1'), /^udhcp /);
  t.truthy(discover.options.find((o) => o.code === 55));
});

test('a renewal is a unicast REQUEST from the bound address and an ACK', (t) => {
  const [request, ack] = load('renew.pcap').map((f) => f.msg);
  t.is(request.messageType, T.REQUEST);
  t.is(request.ciaddr, FIRST_ADDR);
  t.is(request.requestedAddress, undefined);
  assertServerReply(t, ack, FIRST_ADDR, true);
});

test('a refused renewal decodes as NAK, then the client is bound to the new address', (t) => {
  const msgs = load('nak.pcap').map((f) => f.msg);
  t.deepEqual(msgs.map((m) => m.messageType), [T.REQUEST, T.NAK, T.DISCOVER, T.OFFER, T.REQUEST, T.ACK]);
  const nak = msgs[1];
  t.is(nak.serverId, SERVER);
  t.is(nak.yiaddr, '0.0.0.0');
  t.is(nak.chaddr, GUEST_MAC);
  t.is(nak.options.find((o) => o.code === 56)?.data.toString('latin1'), 'static lease available');
  assertServerReply(t, msgs[5], SECOND_ADDR);
});

test('RELEASE names the released address and the server', (t) => {
  const [release] = load('release.pcap').map((f) => f.msg);
  t.is(release.messageType, T.RELEASE);
  t.is(release.ciaddr, SECOND_ADDR);
  t.is(release.serverId, SERVER);
  t.is(release.chaddr, GUEST_MAC);
});

test('802.1Q-tagged frames yield the VLAN id and the same messages', (t) => {
  const tagged = load('vlan.pcap');
  const plain = load('dora.pcap');
  t.deepEqual(tagged.map((f) => f.vlanId), [42, 42, 42, 42]);
  t.deepEqual(tagged.map((f) => f.msg), plain.map((f) => f.msg));
});

test('re-encoding every captured message gives back the same decoded message', (t) => {
  for (const name of ['dora.pcap', 'renew.pcap', 'nak.pcap', 'release.pcap']) {
    for (const { msg } of load(name)) {
      const bytes = encodeDhcpPacket({
        op: msg.op,
        htype: msg.htype,
        hops: msg.hops,
        xid: msg.xid,
        secs: msg.secs,
        flags: msg.flags,
        ciaddr: msg.ciaddr,
        yiaddr: msg.yiaddr,
        siaddr: msg.siaddr,
        giaddr: msg.giaddr,
        chaddr: msg.chaddr,
        sname: msg.sname,
        file: msg.file,
        extraOptions: msg.options,
      });
      t.deepEqual(decodeDhcpPacket(bytes), msg, `${name} xid ${msg.xid} type ${msg.messageType}`);
    }
  }
});

test('typed encoder fields come back from the decoder, option 82 included', (t) => {
  const bytes = encodeDhcpPacket({
    xid: 0xdeadbeef,
    chaddr: '02:00:00:00:00:09',
    messageType: T.ACK,
    yiaddr: '192.0.2.10',
    giaddr: '192.0.2.1',
    subnetMask: '255.255.255.128',
    routers: ['192.0.2.1', '192.0.2.2'],
    dnsServers: ['198.51.100.53'],
    hostname: 'vm-9',
    domainName: 'example.test',
    leaseTimeSec: 86400,
    serverId: '192.0.2.254',
    clientId: '0102000000000009',
    relayAgentInfo: { circuitId: Buffer.from('ge-0/0/1.100'), remoteId: Buffer.from([0xaa, 0xbb]) },
    extraOptions: [{ code: 224, data: Buffer.from('private') }],
  });
  const m = decodeDhcpPacket(bytes);
  t.is(m.op, 2);
  t.is(m.xid, 0xdeadbeef);
  t.is(m.giaddr, '192.0.2.1');
  t.deepEqual(m.routers, ['192.0.2.1', '192.0.2.2']);
  t.is(m.leaseTimeSec, 86400);
  t.is(m.renewalTimeSec, undefined);
  t.deepEqual(m.relayAgentInfo, {
    circuitId: Buffer.from('ge-0/0/1.100').toString('hex'),
    remoteId: 'aabb',
    subOptions: [
      { code: 1, data: Buffer.from('ge-0/0/1.100').toString('hex') },
      { code: 2, data: 'aabb' },
    ],
  });
  t.is(m.options.find((o) => o.code === 224)?.data.toString(), 'private');
});

test('options in the file and sname fields are read when option 52 says so, file first', (t) => {
  const bytes = encodeDhcpPacket({
    xid: 1,
    chaddr: '02:00:00:00:00:01',
    messageType: T.ACK,
    yiaddr: '10.0.0.9',
    overloadFile: [{ code: 15, data: Buffer.from('from-file') }, { code: 6, data: Buffer.from([10, 0, 0, 53]) }],
    overloadSname: [{ code: 12, data: Buffer.from('from-sname') }, { code: 6, data: Buffer.from([10, 0, 0, 54]) }],
  });
  const m = decodeDhcpPacket(bytes);
  t.is(m.overload, 3);
  t.is(m.sname, '');
  t.is(m.file, '');
  t.is(m.domainName, 'from-file');
  t.is(m.hostname, 'from-sname');
  t.deepEqual(m.dnsServers, ['10.0.0.53', '10.0.0.54']);
});

test('options longer than 255 bytes are split on encode and concatenated on decode (RFC 3396)', (t) => {
  const big = Buffer.alloc(700, 0x41);
  const dns = Array.from({ length: 80 }, (_, i) => `10.1.${i}.1`);
  const m = decodeDhcpPacket(encodeDhcpPacket({ xid: 2, chaddr: '02:00:00:00:00:02', dnsServers: dns, extraOptions: [{ code: 250, data: big }] }));
  t.deepEqual(m.dnsServers, dns);
  t.deepEqual(m.options.find((o) => o.code === 250)?.data, big);
});

test('sname and file text is kept when not overloaded', (t) => {
  const m = decodeDhcpPacket(encodeDhcpPacket({ xid: 3, chaddr: '02:00:00:00:00:03', sname: 'boot-server', file: 'pxelinux.0' }));
  t.is(m.sname, 'boot-server');
  t.is(m.file, 'pxelinux.0');
  t.is(m.messageType, 0);
});

// Lease table behaviour on real captured exchanges (test/fixtures/dhcp) and on edge cases built with the encoder.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError } from '../../../shared/errors';
import { DhcpFrameView } from '../../../agent/dhcp/dhcp-frame-codec';
import { decodeDhcpPacket, encodeDhcpPacket, type DhcpEncodeInput, type DhcpMessage } from '../../../agent/dhcp/dhcp-packet-codec';
import { DhcpLeaseTable, type Clock, type LeaseChangeEvent } from '../../../agent/dhcp/dhcp-lease-table';
import { readPcapFile } from '../../../agent/dhcp/pcap-file';

const FIXTURES = join(__dirname, '../../../../test/fixtures/dhcp');
const MAC = '52:54:00:aa:bb:01';

class FakeClock implements Clock {
  constructor(public now = 1_700_000_000_000) {}
  nowMs(): number {
    return this.now;
  }
}

function fixture(name: string): Array<{ msg: DhcpMessage; vlanId: number }> {
  const view = new DhcpFrameView();
  return readPcapFile(readFileSync(join(FIXTURES, name))).records.map((r) => {
    view.decode(r.data);
    return { msg: view.packet.toMessage(), vlanId: view.vlanId };
  });
}

function feed(table: DhcpLeaseTable, name: string): LeaseChangeEvent[] {
  return fixture(name)
    .map(({ msg, vlanId }) => table.apply(msg, { vlanId }))
    .filter((e): e is LeaseChangeEvent => e !== undefined);
}

const ack = (over: Partial<DhcpEncodeInput> = {}) =>
  decodeDhcpPacket(encodeDhcpPacket({ xid: 9, chaddr: '02:00:00:00:00:09', messageType: 5, yiaddr: '10.9.0.9', serverId: '10.9.0.1', leaseTimeSec: 1000, ...over }));

test('a captured DISCOVER..ACK binds the lease the server handed out', (t) => {
  const clock = new FakeClock();
  const table = new DhcpLeaseTable(clock);
  const events = feed(table, 'dora.pcap');
  t.deepEqual(events.map((e) => e.kind), ['bound']);
  const lease = table.get(MAC)!;
  t.like(lease, {
    mac: MAC,
    state: 'bound',
    address: '10.77.0.77',
    subnetMask: '255.255.255.0',
    routers: ['10.77.0.1'],
    dnsServers: ['10.77.0.53', '10.77.0.54'],
    domainName: 'lab.umbra.test',
    hostname: 'guest1',
    leaseTimeSec: 600,
    renewalTimeSec: 250,
    rebindingTimeSec: 450,
    serverId: '10.77.0.1',
    clientId: '01525400aabb01',
    leaseStartMs: clock.now,
    expiresAtMs: clock.now + 600_000,
  });
  t.is(lease.vlanId, undefined);
  t.is(events[0].version, lease.version);
});

test('the same ACK seen again is not an event; a captured renewal is "renewed" and moves the expiry', (t) => {
  const clock = new FakeClock();
  const table = new DhcpLeaseTable(clock);
  const dora = fixture('dora.pcap');
  feed(table, 'dora.pcap');
  t.is(table.apply(dora[3].msg), undefined);
  clock.now += 100_000;
  const events = feed(table, 'renew.pcap');
  t.deepEqual(events.map((e) => e.kind), ['renewed']);
  t.is(events[0].lease.expiresAtMs, clock.now + 600_000);
  t.is(events[0].previous?.expiresAtMs, clock.now - 100_000 + 600_000);
  t.true(events[0].version > events[0].previous!.version);
});

test('a renewal with new DNS servers is "changed" and names the field', (t) => {
  const table = new DhcpLeaseTable(new FakeClock());
  table.apply(ack({ dnsServers: ['10.9.0.53'] }));
  const e = table.apply(ack({ xid: 10, dnsServers: ['10.9.0.99'] }))!;
  t.is(e.kind, 'changed');
  t.deepEqual(e.changedFields, ['dnsServers']);
  t.deepEqual(e.lease.dnsServers, ['10.9.0.99']);
  t.deepEqual(e.previous?.dnsServers, ['10.9.0.53']);
});

test('a captured NAK releases the lease and the following ACK binds the new address', (t) => {
  const table = new DhcpLeaseTable(new FakeClock());
  feed(table, 'dora.pcap');
  const events = feed(table, 'nak.pcap');
  t.deepEqual(events.map((e) => e.kind), ['released', 'bound']);
  t.is(events[0].lease.endReason, 'nak');
  t.is(events[0].lease.address, '10.77.0.77');
  t.is(events[1].lease.address, '10.77.0.88');
  t.is(events[1].lease.hostname, 'guest1');
  t.true(events[1].version > events[0].version);
});

test('a captured RELEASE ends the lease; a RELEASE of another address does not', (t) => {
  const table = new DhcpLeaseTable(new FakeClock());
  feed(table, 'dora.pcap');
  feed(table, 'nak.pcap');
  const [release] = fixture('release.pcap');
  t.is(table.apply({ ...release.msg, ciaddr: '10.77.0.5' }), undefined);
  const e = table.apply(release.msg)!;
  t.is(e.kind, 'released');
  t.is(e.lease.endReason, 'release');
  t.is(table.get(MAC)?.state, 'released');
  t.is(table.apply(release.msg), undefined, 'a second RELEASE changes nothing');
});

test('DECLINE of the bound address releases it', (t) => {
  const table = new DhcpLeaseTable(new FakeClock());
  table.apply(ack());
  const decline = decodeDhcpPacket(encodeDhcpPacket({ xid: 11, chaddr: '02:00:00:00:00:09', messageType: 4, requestedAddress: '10.9.0.9' }));
  t.is(table.apply(decline)?.lease.endReason, 'decline');
});

test('leases expire when the clock passes their expiry, once', (t) => {
  const clock = new FakeClock();
  const table = new DhcpLeaseTable(clock);
  table.apply(ack());
  clock.now += 999_000;
  t.deepEqual(table.expireDue(), []);
  t.is(table.nextExpiryMs(), clock.now + 1000);
  clock.now += 1000;
  const [e] = table.expireDue();
  t.is(e.kind, 'expired');
  t.is(e.lease.state, 'expired');
  t.deepEqual(table.expireDue(), []);
  t.is(table.nextExpiryMs(), null);
});

test('T1/T2 default to 0.5 and 0.875 of the lease; an infinite lease never expires', (t) => {
  const table = new DhcpLeaseTable(new FakeClock());
  const e = table.apply(ack())!;
  t.is(e.lease.renewalTimeSec, 500);
  t.is(e.lease.rebindingTimeSec, 875);
  const inf = table.apply(ack({ chaddr: '02:00:00:00:00:0a', leaseTimeSec: 0xffffffff }))!;
  t.is(inf.lease.expiresAtMs, null);
  t.deepEqual(table.expireDue(), []);
});

test('hostname and client id come from the REQUEST when the ACK lacks them; VLAN from the context', (t) => {
  const table = new DhcpLeaseTable(new FakeClock());
  table.apply(decodeDhcpPacket(encodeDhcpPacket({ xid: 9, chaddr: '02:00:00:00:00:09', messageType: 3, hostname: 'vm9', clientId: '0102000000000009' })));
  const e = table.apply(ack(), { vlanId: 42 })!;
  t.is(e.lease.hostname, 'vm9');
  t.is(e.lease.clientId, '0102000000000009');
  t.is(e.lease.vlanId, 42);
  const moved = table.apply(ack({ xid: 12 }), { vlanId: 43 })!;
  t.is(moved.kind, 'changed');
  t.deepEqual(moved.changedFields, ['vlanId']);
});

test('OFFER, INFORM-ACK and plain BOOTP do not touch the table; listeners get every event', (t) => {
  const table = new DhcpLeaseTable(new FakeClock());
  const seen: string[] = [];
  const off = table.onChange((e) => seen.push(e.kind));
  t.is(table.apply(ack({ messageType: 2 })), undefined);
  t.is(table.apply(ack({ yiaddr: '0.0.0.0' })), undefined);
  t.is(table.apply(ack({ messageType: undefined })), undefined);
  table.apply(ack());
  off();
  table.apply(ack({ xid: 99, hostname: 'x' }));
  t.deepEqual(seen, ['bound']);
  t.is(table.size, 1);
});

test('save/restore keeps leases and keeps versions increasing', (t) => {
  const clock = new FakeClock();
  const table = new DhcpLeaseTable(clock);
  feed(table, 'dora.pcap');
  table.apply(ack());
  const state = JSON.parse(JSON.stringify(table.save()));
  t.is(state.version, 1);
  const restored = DhcpLeaseTable.restore({ clock }, state);
  t.deepEqual(restored.list(), table.list());
  const before = restored.get(MAC)!.version;
  const e = feed(restored, 'nak.pcap');
  t.true(e[0].version > before && e[0].version > table.get('02:00:00:00:00:09')!.version);
});

test('restore names the bad field', (t) => {
  const good = new DhcpLeaseTable(new FakeClock());
  good.apply(ack());
  const state = good.save();
  const bad = (mutate: (s: any) => void) => {
    const s = JSON.parse(JSON.stringify(state));
    mutate(s);
    return t.throws(() => DhcpLeaseTable.restore({}, s), { instanceOf: InvalidArgumentError })?.message;
  };
  t.regex(bad((s) => (s.version = 2)) ?? '', /state\.version/);
  t.regex(bad((s) => (s.leases[0].mac = 'zz')) ?? '', /state\.leases\[0\]\.mac/);
  t.regex(bad((s) => (s.leases[0].dnsServers = ['x'])) ?? '', /dnsServers/);
  t.regex(bad((s) => (s.leases = {})) ?? '', /state\.leases/);
});

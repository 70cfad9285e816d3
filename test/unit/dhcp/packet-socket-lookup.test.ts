// Pure parts of reading the DHCP capture's kernel counters: /proc/net/packet and /proc/self/fd
// parsing, choosing the socket a capture opened, accumulating reads that reset, and how the
// counts read in health and metrics.
import test from 'ava';
import { Registry } from 'prom-client';
import { captureHealthDetail, registerCaptureMetrics } from '../../../agent/dhcp/dhcp-capture-report';
import type { CaptureStats } from '../../../agent/dhcp/pcap-capture';
import {
  ownedPacketSockets,
  PacketCountAccumulator,
  parseProcNetPacket,
  pickNewPacketSocket,
  ProcNetPacketFormatError,
  socketInodeOfLink,
} from '../../../agent/net/proc-net-packet';

// Read from a 6.18 kernel with two libpcap captures open on lo (ifindex 1), plus a DGRAM
// socket bound to no interface and a socket not running, as other programs hold them.
const PROC_NET_PACKET = [
  'sk               RefCnt Type Proto  Iface R Rmem   User   Inode',
  '000000009441cc89 3      3    0003   1     1 0      0      145366',
  '00000000c6522652 3      3    0003   1     1 0      0      145369',
  '0000000000000000 2      2    0806   0     1 2304   0      9001',
  '0000000000000000 2      3    0000   4     0 0      1000   9002',
  '',
].join('\n');

test('/proc/net/packet rows are read by column name', (t) => {
  const rows = parseProcNetPacket(PROC_NET_PACKET);
  t.deepEqual(rows, [
    { inode: 145366, type: 3, protocol: 3, ifindex: 1, running: true, uid: 0 },
    { inode: 145369, type: 3, protocol: 3, ifindex: 1, running: true, uid: 0 },
    { inode: 9001, type: 2, protocol: 0x0806, ifindex: 0, running: true, uid: 0 },
    { inode: 9002, type: 3, protocol: 0, ifindex: 4, running: false, uid: 1000 },
  ]);
  // Columns found by name, not position.
  const reordered = 'Inode Iface Type Proto R User\n77 5 3 0003 1 0\n';
  t.deepEqual(parseProcNetPacket(reordered), [{ inode: 77, type: 3, protocol: 3, ifindex: 5, running: true, uid: 0 }]);
  t.deepEqual(parseProcNetPacket(PROC_NET_PACKET.split('\n')[0] + '\n'), [], 'no packet sockets');
});

test('text that is not /proc/net/packet is refused, not half-read', (t) => {
  t.throws(() => parseProcNetPacket(''), { instanceOf: ProcNetPacketFormatError, message: /empty/ });
  t.throws(() => parseProcNetPacket('sl local_address rem_address st\n0: 0100007F:0035 00000000:0000 0A\n'), { message: /header lacks Type, Proto, Iface, R, User, Inode/ });
  const short = PROC_NET_PACKET.replace('0      0      145366', '0      0');
  t.throws(() => parseProcNetPacket(short), { message: /line 2 has 8 fields, the header 9/ });
  t.throws(() => parseProcNetPacket(PROC_NET_PACKET.replace('145369', '14536x')), { message: /line 3: Inode is not a number: 14536x/ });
  t.throws(() => parseProcNetPacket(PROC_NET_PACKET.replace('0806', 'zz06')), { message: /Proto is not hexadecimal/ });
});

test('fd link targets give socket inodes only', (t) => {
  t.is(socketInodeOfLink('socket:[145366]'), 145366);
  t.is(socketInodeOfLink('pipe:[145366]'), undefined);
  t.is(socketInodeOfLink('/dev/null'), undefined);
  t.is(socketInodeOfLink('socket:[]'), undefined);
  t.is(socketInodeOfLink('anon_inode:[eventfd]'), undefined);
});

test('our fds are joined with the namespace packet sockets; others are left out', (t) => {
  const rows = parseProcNetPacket(PROC_NET_PACKET);
  // fd 21 is a TCP socket (not in /proc/net/packet); inode 9002 belongs to another process.
  const fds = new Map([[23, 145369], [21, 5555], [20, 145366], [30, 9001]]);
  t.deepEqual(ownedPacketSockets(fds, rows).map((s) => [s.fd, s.inode, s.ifindex]), [[20, 145366, 1], [23, 145369, 1], [30, 9001, 0]]);
});

test('the capture socket is the one new socket bound to its interface', (t) => {
  const rows = parseProcNetPacket(PROC_NET_PACKET);
  const owned = ownedPacketSockets(new Map([[20, 145366], [23, 145369], [30, 9001]]), rows);
  // First capture opened fd 20; the second capture on the same interface opens fd 23.
  const second = pickNewPacketSocket(new Set([145366, 9001]), owned, 1);
  t.deepEqual('socket' in second ? [second.socket.fd, second.socket.inode] : second, [23, 145369]);
  const first = pickNewPacketSocket(new Set([9001]), owned.filter((s) => s.fd !== 23), 1);
  t.deepEqual('socket' in first ? first.socket.fd : first, 20);
});

test('no new socket, or several on the interface, is a reason and never a guess', (t) => {
  const owned = ownedPacketSockets(new Map([[20, 145366], [23, 145369], [30, 9001]]), parseProcNetPacket(PROC_NET_PACKET));
  const none = pickNewPacketSocket(new Set([145366, 145369, 9001]), owned, 1);
  t.deepEqual(none, { reason: 'no new packet socket bound to ifindex 1 after the capture opened (new packet sockets: none)' });
  const wrongIf = pickNewPacketSocket(new Set([145366, 145369]), owned, 1);
  t.deepEqual(wrongIf, { reason: 'no new packet socket bound to ifindex 1 after the capture opened (new packet sockets: fd 30 ifindex 0)' });
  const two = pickNewPacketSocket(new Set([9001]), owned, 1);
  t.deepEqual(two, { reason: '2 new packet sockets bound to ifindex 1 (fds 20, 23): cannot tell which is the capture\'s' });
});

test('reads that reset are summed; the V3 freeze count only once the kernel reports it', (t) => {
  const acc = new PacketCountAccumulator();
  t.deepEqual(acc.totals(), { received: 0, dropped: 0 });
  t.deepEqual(acc.add({ packets: 120, drops: 0 }), { received: 120, dropped: 0 });
  t.deepEqual(acc.add({ packets: 0, drops: 0 }), { received: 120, dropped: 0 });
  t.deepEqual(acc.add({ packets: 4000, drops: 3984 }), { received: 4120, dropped: 3984 });
  t.deepEqual(acc.add({ packets: 5, drops: 1, freezeQueueCount: 2 }), { received: 4125, dropped: 3985, freezeQueueCount: 2 });
  t.deepEqual(acc.add({ packets: 1, drops: 0, freezeQueueCount: 1 }), { received: 4126, dropped: 3985, freezeQueueCount: 3 });
});

const CAPTURES: Record<string, CaptureStats> = {
  eth0: { captured: 4000, truncated: 0, kernelReceived: 4120, kernelDropped: 120 },
  tap7: { captured: 3, truncated: 0, kernelStatsUnavailable: 'kernel packet statistics unavailable: no new packet socket bound to ifindex 9' },
};

test('health names each interface with its kernel counts or why they are unavailable', (t) => {
  t.is(
    captureHealthDetail(CAPTURES),
    'eth0 kernel received 4120 dropped 120 (captured 4000); tap7 kernel counts kernel packet statistics unavailable: no new packet socket bound to ifindex 9 (captured 3)',
  );
  t.is(captureHealthDetail({}), 'no capture open');
});

test('metrics carry per-interface kernel counts, and no kernel series where they are unavailable', async (t) => {
  const registry = new Registry();
  let captures: Record<string, CaptureStats> | undefined;
  let reads = 0;
  registerCaptureMetrics(registry, () => {
    reads++;
    return captures;
  });
  t.notRegex(await registry.metrics(), /\{interface=/, 'no series while no capture runs');
  captures = CAPTURES;
  reads = 0;
  const text = await registry.metrics();
  t.is(reads, 1, 'one scrape reads the captures once');
  t.regex(text, /umbra_agent_dhcp_capture_kernel_received_frames\{interface="eth0"\} 4120/);
  t.regex(text, /umbra_agent_dhcp_capture_kernel_dropped_frames\{interface="eth0"\} 120/);
  t.regex(text, /umbra_agent_dhcp_capture_frames\{interface="tap7"\} 3/);
  t.regex(text, /umbra_agent_dhcp_capture_kernel_stats_available\{interface="eth0"\} 1/);
  t.regex(text, /umbra_agent_dhcp_capture_kernel_stats_available\{interface="tap7"\} 0/);
  t.notRegex(text, /kernel_(received|dropped)_frames\{interface="tap7"\}/);
});

// Kernel counters of the DHCP capture socket (PACKET_STATISTICS through native/packet-stats.c),
// against real frames sent by tcpreplay from another namespace: exact received counts, a drop
// count forced by holding the capture's event loop with a small ring, and the right socket per
// capture when several run in one process.
import test from 'ava';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { encodeDhcpFrame } from '../../../agent/dhcp/dhcp-frame-codec';
import { encodeDhcpPacket } from '../../../agent/dhcp/dhcp-packet-codec';
import type { CaptureStats } from '../../../agent/dhcp/pcap-capture';
import { writePcapFile } from '../../../agent/dhcp/pcap-file';
import { isRoot, NetnsLab, waitFor } from '../../helpers/netns';

const lab = new NetnsLab('ks');
const tmp = mkdtempSync(join(tmpdir(), 'umbra-capture-stats-'));
let hosts: { src: string; dst: string } | undefined;

interface ChildLine {
  type: string;
  stats?: Record<string, CaptureStats>;
  socketFds?: Record<string, number | undefined>;
  chosenFds?: Record<string, number | undefined>;
}

test.after.always(async () => {
  await lab.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

/** src and dst joined twice: eth0 over one bridge, eth1 over another. */
async function labHosts(): Promise<{ src: string; dst: string }> {
  if (hosts) return hosts;
  await lab.start();
  const src = await lab.addHost('src');
  const dst = await lab.addHost('dst');
  for (const [bridge, ifname] of [['ksa', 'eth0'], ['ksb', 'eth1']]) {
    await lab.link(src, { bridge, ifname });
    await lab.link(dst, { bridge, ifname });
  }
  hosts = { src, dst };
  return hosts;
}

/** `count` DHCP frames to `dstPort` (67: client to server, 68: server to client). */
function framesFile(name: string, count: number, dstPort: 67 | 68): string {
  const payload = encodeDhcpPacket({ xid: 7, chaddr: '52:54:00:00:00:07', messageType: dstPort === 67 ? 1 : 2 });
  const frame = encodeDhcpFrame({ srcMac: '52:54:00:00:00:07', srcPort: dstPort === 67 ? 68 : 67, dstPort, payload });
  const file = join(tmp, `${name}.pcap`);
  writeFileSync(file, writePcapFile(Array.from({ length: count }, () => ({ data: frame }))));
  return file;
}

async function send(src: string, ifname: string, file: string, pps: number): Promise<void> {
  await lab.exec(src, 'tcpreplay', ['-q', '-i', ifname, `--pps=${pps}`, file]);
}

class Child {
  readonly lines: ChildLine[] = [];
  stderr = '';
  constructor(readonly proc: ChildProcess) {
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      try {
        const o = JSON.parse(l);
        if (o.child) this.lines.push(o);
      } catch {
        /* a log line */
      }
    });
    proc.stderr!.on('data', (d) => (this.stderr += d));
  }

  static async start(ns: string, specs: string[]): Promise<Child> {
    const proc = lab.spawn(ns, process.execPath, [join(__dirname, 'capture-stats-child.js'), ...specs], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, UMBRA_LOG_LEVEL: 'warn' },
    });
    const child = new Child(proc);
    await child.next('ready');
    return child;
  }

  async next(type: string, command?: string): Promise<ChildLine> {
    const n = this.lines.length;
    if (command) this.proc.stdin!.write(`${command}\n`);
    return waitFor(type, async () => {
      const line = this.lines.slice(n).find((l) => l.type === type);
      if (!line && this.proc.exitCode !== null) throw new Error(`child exited: ${this.stderr}`);
      return line;
    });
  }

  async stats(): Promise<Record<string, CaptureStats>> {
    return (await this.next('stats', 'stats')).stats!;
  }

  /** Polls stats until `done` holds; fails with the last stats seen. */
  async statsUntil(what: string, done: (s: Record<string, CaptureStats>) => boolean): Promise<Record<string, CaptureStats>> {
    let last: Record<string, CaptureStats> | undefined;
    return waitFor(what, async () => {
      last = await this.stats();
      return done(last) ? last : undefined;
    }, 20000).catch((err: Error) => {
      throw new Error(`${err.message}; last stats ${JSON.stringify(last)}`);
    });
  }
}

test.serial('the kernel counts every DHCP frame sent, and counts exactly the frames a full ring dropped', async (t) => {
  if (!isRoot() || spawnSync('tcpreplay', ['-V']).error) {
    t.log('skipped: needs root for network namespaces and packet capture, and tcpreplay');
    t.pass();
    return;
  }
  const { src, dst } = await labHosts();
  // A 1 MiB ring: with the 65535-byte snap length cap sets and offloads on (veth), libpcap gives
  // each frame a 128 KiB block, so 16 slots (hundreds with offloads off): far below the burst.
  const child = await Child.start(dst, ['ring=eth0,1048576']);

  const first = 6; // fits the ring even if the capture is not scheduled at all meanwhile
  await send(src, 'eth0', framesFile('first', first, 67), 1000);
  const calm = await child.statsUntil('first frames captured', (s) => s.ring.captured >= first);
  t.is(calm.ring.kernelStatsUnavailable, undefined);
  t.is(calm.ring.captured, first);
  t.is(calm.ring.kernelReceived, first, 'the kernel received every frame sent');
  t.is(calm.ring.kernelDropped, 0);

  // The event loop held in a blocking read: nothing drains the ring while the burst arrives.
  const burst = 3000;
  const fifo = join(tmp, 'hold');
  spawnSync('mkfifo', [fifo]);
  await child.next('blocking', `block ${fifo}`);
  await send(src, 'eth0', framesFile('burst', burst, 67), 20000);
  writeFileSync(fifo, 'x');
  await child.next('unblocked');
  const total = first + burst;
  const after = await child.statsUntil('ring drained', (s) => s.ring.kernelReceived === total && s.ring.captured + (s.ring.kernelDropped ?? 0) === total);
  const dropped = after.ring.kernelDropped ?? -1;
  t.log({ burst, captured: after.ring.captured - first, dropped });
  t.true(dropped > 0, 'a 1 MiB ring cannot hold the burst');
  t.true(dropped < burst, 'the ring held some of the burst');
  t.is(after.ring.captured + dropped, total, 'every frame the kernel received was either delivered or counted as dropped');

  const closed = await child.next('closed', 'exit');
  t.is(closed.stats!.ring.kernelReceived, total, 'the totals survive close');
  t.is(closed.stats!.ring.kernelDropped, dropped);
});

test.serial('with three captures in one process, each reads the counters of its own socket', async (t) => {
  if (!isRoot() || spawnSync('tcpreplay', ['-V']).error) {
    t.log('skipped: needs root for network namespaces and packet capture, and tcpreplay');
    t.pass();
    return;
  }
  const { src, dst } = await labHosts();
  // Two captures on the same interface told apart only by their filters, one on another interface.
  const child = await Child.start(dst, ['toServer=eth0:udp dst port 67', 'toClient=eth0:udp dst port 68', 'other=eth1']);
  const ready = child.lines.find((l) => l.type === 'ready')!;
  for (const name of ['toServer', 'toClient', 'other']) {
    t.is(typeof ready.socketFds![name], 'number', `${name} opened a packet socket`);
    t.is(ready.chosenFds![name], ready.socketFds![name], `${name} reads the socket it opened`);
  }
  t.is(new Set(Object.values(ready.chosenFds!)).size, 3);

  await send(src, 'eth0', framesFile('to-server', 40, 67), 5000);
  await send(src, 'eth0', framesFile('to-client', 70, 68), 5000);
  await send(src, 'eth1', framesFile('other', 25, 67), 5000);
  const s = await child.statsUntil('all frames captured', (x) => x.toServer.captured >= 40 && x.toClient.captured >= 70 && x.other.captured >= 25);
  t.like(s.toServer, { captured: 40, kernelReceived: 40, kernelDropped: 0 });
  t.like(s.toClient, { captured: 70, kernelReceived: 70, kernelDropped: 0 });
  t.like(s.other, { captured: 25, kernelReceived: 25, kernelDropped: 0 });
  await child.next('closed', 'exit');
});

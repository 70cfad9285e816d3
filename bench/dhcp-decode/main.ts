// Benchmark: DHCP decode rate on one core (ours vs the npm `dhcp` package's parser, same run and
// packets), then capture under replayed load: tcpreplay at 20,000 DHCP packets/s into a namespace
// where our sniffer and tcpdump (the peer) capture side by side.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { DhcpFrameView, encodeDhcpFrame } from '../../agent/dhcp/dhcp-frame-codec';
import { DhcpPacketView, encodeDhcpPacket } from '../../agent/dhcp/dhcp-packet-codec';
import { readPcapFile, writePcapFile } from '../../agent/dhcp/pcap-file';
import type { DhcpSnifferStats } from '../../agent/dhcp/dhcp-sniffer';
import { DEFAULT_CAPTURE_BUFFER_BYTES } from '../../agent/dhcp/pcap-capture';
import { printFigures, printTable, type BenchRow } from '../lib/report';
import { isRoot, NetnsLab, waitFor } from '../../test/helpers/netns';

const DECODE_SECONDS = 2;
const REPLAY_PPS = 20000;
const REPLAY_SECONDS = 4;
const ROOT = join(__dirname, '../../..');
const FIXTURES = join(ROOT, 'test/fixtures/dhcp');

/** Realistic mix: every captured dnsmasq/udhcpc message plus relayed and option-heavy ones. */
function payloadMix(): Buffer[] {
  const out: Buffer[] = [];
  for (const f of ['dora.pcap', 'renew.pcap', 'nak.pcap', 'release.pcap']) {
    for (const r of readPcapFile(readFileSync(join(FIXTURES, f))).records) out.push(r.data.subarray(42));
  }
  out.push(
    encodeDhcpPacket({
      xid: 1, chaddr: '52:54:00:00:00:01', messageType: 5, yiaddr: '10.0.0.2', giaddr: '10.0.0.254', subnetMask: '255.255.255.0',
      routers: ['10.0.0.1'], dnsServers: ['10.0.0.53', '10.0.0.54', '10.0.0.55'], domainName: 'example.internal', hostname: 'vm-0001',
      leaseTimeSec: 86400, serverId: '10.0.0.1', clientId: '01525400000001', relayAgentInfo: { circuitId: Buffer.from('eth0:100'), remoteId: Buffer.from('tor-1') },
    }),
  );
  return out;
}

function rate(fn: () => void, n: number): number {
  const deadline = process.hrtime.bigint() + BigInt(DECODE_SECONDS * 1e9);
  let count = 0;
  const t0 = process.hrtime.bigint();
  while (process.hrtime.bigint() < deadline) {
    for (let i = 0; i < n; i++) fn();
    count += n;
  }
  return count / (Number(process.hrtime.bigint() - t0) / 1e9);
}

function decodeRates(): { lazy: number; full: number; frames: number; peer?: number } {
  const payloads = payloadMix();
  const frames = payloads.map((p) => encodeDhcpFrame({ srcMac: '52:54:00:00:00:01', payload: p }));
  const view = new DhcpPacketView();
  const fview = new DhcpFrameView();
  let i = 0;
  let sink = 0;
  const lazy = rate(() => {
    const p = payloads[i++ % payloads.length];
    if (view.tryDecode(p) === null) sink += view.messageType + view.macNumber() + view.yiaddr + view.optionU32(51);
  }, 10000);
  const framesRate = rate(() => {
    const f = frames[i++ % frames.length];
    if (fview.tryDecode(f) === null) sink += fview.packet.messageType + fview.packet.macNumber();
  }, 10000);
  const full = rate(() => {
    sink += view.decode(payloads[i++ % payloads.length]).toMessage().options.length;
  }, 1000);
  let peer: number | undefined;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const protocol = require('dhcp/lib/protocol.js') as { parse(b: Buffer): { options: Record<number, unknown> } };
    // The peer console.logs every option it does not know (82 here); muted so we time its parsing, not the terminal.
    const log = console.log;
    console.log = () => undefined;
    try {
      peer = rate(() => {
        sink += Object.keys(protocol.parse(payloads[i++ % payloads.length]).options).length;
      }, 1000);
    } finally {
      console.log = log;
    }
  } catch (err) {
    console.error(`peer npm dhcp@0.2.20 unavailable: ${(err as Error).message}`);
  }
  if (sink === 42) console.log('');
  return { lazy, full, frames: framesRate, peer };
}

interface ReplayResult {
  sent: number;
  ours: number;
  decoded: number;
  oursKernelReceived?: number;
  oursKernelDrops?: number;
  oursKernelUnavailable?: string;
  /** CPU used by the sniffer process from the first frame sent until its counts settled. */
  captureCpuSeconds: number;
  captureSystemCpuSeconds: number;
  /** Batches libpcap handed to JS (one call each). */
  batches?: number;
  malformed: number;
  tcpdump: number;
  tcpdumpKernelDrops: number;
}

/** CPU seconds used so far by process `pid`: user and system. */
function cpuSeconds(pid: number): { user: number; system: number } {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return { user: Number(f[11]) / 100, system: Number(f[12]) / 100 }; // utime, stime in clock ticks (USER_HZ = 100)
}

async function replay(bufferBytes: number | undefined): Promise<ReplayResult> {
  const lab = new NetnsLab('rp');
  const tmp = mkdtempSync(join(tmpdir(), 'umbra-dhcp-replay-'));
  try {
    await lab.start();
    const src = await lab.addHost('src');
    const dst = await lab.addHost('dst');
    await lab.link(src, { bridge: 'rp', ifname: 'eth0' });
    await lab.link(dst, { bridge: 'rp', ifname: 'eth0' });
    const count = REPLAY_PPS * REPLAY_SECONDS;
    const payloads = payloadMix();
    const frames = Array.from({ length: count }, (_, k) => ({
      data: encodeDhcpFrame({ srcMac: '52:54:00:10:00:01', payload: payloads[k % payloads.length] }),
    }));
    const pcapPath = join(tmp, 'load.pcap');
    writeFileSync(pcapPath, writePcapFile(frames));

    const child = lab.spawn(dst, process.execPath, [join(ROOT, 'dist/test/os/dhcp/sniffer-child.js'), 'eth0', '02:00:00:00:00:00', ...(bufferBytes ? [String(bufferBytes)] : [])], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, UMBRA_LOG_LEVEL: 'warn' },
    });
    const lines: Array<{ type: string; stats?: DhcpSnifferStats }> = [];
    createInterface({ input: child.stdout! }).on('line', (l) => {
      try {
        const o = JSON.parse(l);
        if (o.child) lines.push(o);
      } catch {
        /* log line */
      }
    });
    await waitFor('sniffer ready', async () => lines.some((l) => l.type === 'ready'));
    let tcpdumpErr = '';
    const tcpdump = spawn('ip', ['netns', 'exec', dst, 'tcpdump', '-i', 'eth0', '-n', '-q', '-w', '/dev/null', 'udp and (port 67 or port 68)'], { stdio: ['ignore', 'ignore', 'pipe'] });
    tcpdump.stderr.on('data', (d) => (tcpdumpErr += d));
    await waitFor('tcpdump listening', async () => tcpdumpErr.includes('listening on'));
    const cpuBefore = cpuSeconds(child.pid!);
    await lab.exec(src, 'tcpreplay', ['-q', '-i', 'eth0', `--pps=${REPLAY_PPS}`, pcapPath]);
    // Frames may still be queued in the capture ring: read stats until the count stops moving.
    const readStats = async () => {
      const n = lines.length;
      child.stdin!.write('stats\n');
      return waitFor('stats', async () => lines.slice(n).find((l) => l.type === 'stats')?.stats);
    };
    let stats = await readStats();
    for (let k = 0; k < 20; k++) {
      await new Promise((r) => setTimeout(r, 500));
      const next = await readStats();
      const settled = next.frames === stats.frames;
      stats = next;
      if (settled) break;
    }
    const cpuAfter = cpuSeconds(child.pid!);
    const exited = new Promise((r) => tcpdump.once('exit', r));
    tcpdump.kill('SIGINT');
    await exited;
    child.stdin!.write('exit\n');
    const num = (re: RegExp) => Number(re.exec(tcpdumpErr)?.[1] ?? NaN);
    return {
      sent: count,
      ours: stats.frames,
      decoded: stats.decoded,
      oursKernelReceived: stats.captures.eth0?.kernelReceived,
      oursKernelDrops: stats.captures.eth0?.kernelDropped,
      oursKernelUnavailable: stats.captures.eth0?.kernelStatsUnavailable,
      malformed: stats.malformed,
      captureCpuSeconds: cpuAfter.user + cpuAfter.system - cpuBefore.user - cpuBefore.system,
      captureSystemCpuSeconds: cpuAfter.system - cpuBefore.system,
      batches: stats.captures.eth0?.batches,
      tcpdump: num(/(\d+) packets? captured/),
      tcpdumpKernelDrops: num(/(\d+) packets? dropped by kernel/),
    };
  } finally {
    await lab.cleanup();
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** `--ring-mib N`: the capture ring size to replay with (the agent's default otherwise). */
function ringArg(): number | undefined {
  const i = process.argv.indexOf('--ring-mib');
  if (i < 0) return undefined;
  const mib = Number(process.argv[i + 1]);
  if (!Number.isInteger(mib) || mib < 1) throw new Error(`--ring-mib: expected a whole number of MiB, got ${process.argv[i + 1]}`);
  return mib * 1024 * 1024;
}

async function main(): Promise<void> {
  const ringBytes = ringArg();
  const rows: BenchRow[] = [];
  const figures: Record<string, number | string | boolean> = {};
  // `--replay-only` skips the decode section (two cores' worth of seconds on a shared machine).
  if (!process.argv.includes('--replay-only')) {
    const d = decodeRates();
    rows.push(
      { metric: 'decode, lazy view (validate + key fields)', ours: d.lazy / 1e6, peer: d.peer !== undefined ? d.peer / 1e6 : undefined, unit: 'M pkt/s', target: '>= 1' },
      { metric: 'decode, Ethernet/IPv4/UDP frame + view', ours: d.frames / 1e6, unit: 'M pkt/s', target: '>= 1' },
      { metric: 'decode to full object (all options copied)', ours: d.full / 1e6, peer: d.peer !== undefined ? d.peer / 1e6 : undefined, unit: 'M pkt/s' },
    );
    Object.assign(figures, {
      decode_lazy_pkts_per_s: Math.round(d.lazy),
      decode_frame_pkts_per_s: Math.round(d.frames),
      decode_full_pkts_per_s: Math.round(d.full),
      peer_npm_dhcp_pkts_per_s: d.peer !== undefined ? Math.round(d.peer) : 'unavailable',
    });
  }
  let verdict: string | undefined;
  if (isRoot()) {
    const r = await replay(ringBytes);
    const drops = r.oursKernelDrops;
    rows.push(
      { metric: `frames sent by tcpreplay at ${REPLAY_PPS}/s`, ours: r.sent, peer: r.sent, unit: 'frames' },
      { metric: 'frames received by the kernel socket (pcap_stats)', ours: r.oursKernelReceived ?? 'n/a', unit: 'frames', target: `= ${r.sent}` },
      { metric: 'kernel drops, capture ring full (ours: pcap_stats)', ours: drops ?? 'n/a', peer: r.tcpdumpKernelDrops, unit: 'frames', target: '0' },
      { metric: 'frames seen by the capture', ours: r.ours, peer: r.tcpdump, unit: 'frames', target: `= ${r.sent}` },
      { metric: 'frames decoded', ours: r.decoded, unit: 'frames', target: `= ${r.sent}` },
      { metric: 'missing (sent - seen)', ours: r.sent - r.ours, peer: r.sent - r.tcpdump, unit: 'frames', target: '0' },
      { metric: 'malformed (all frames are valid)', ours: r.malformed, unit: 'frames', target: '0' },
      { metric: 'sniffer CPU per frame (capture + decode + table)', ours: (r.captureCpuSeconds / r.sent) * 1e6, unit: 'us', target: `< ${1e6 / REPLAY_PPS}` },
      { metric: '  of which system (kernel) time', ours: (r.captureSystemCpuSeconds / r.sent) * 1e6, unit: 'us' },
      { metric: 'frames per batch handed to JS (mean)', ours: r.batches ? r.ours / r.batches : 'n/a', unit: 'frames' },
    );
    Object.assign(figures, {
      replay_pps: REPLAY_PPS,
      replay_ring_bytes: ringBytes ?? DEFAULT_CAPTURE_BUFFER_BYTES,
      replay_sniffer_cpu_us_per_frame: Math.round((r.captureCpuSeconds / r.sent) * 1e8) / 100,
      replay_sniffer_system_cpu_us_per_frame: Math.round((r.captureSystemCpuSeconds / r.sent) * 1e8) / 100,
      replay_frames_per_batch: r.batches ? Math.round((r.ours / r.batches) * 100) / 100 : -1,
      replay_sent_frames: r.sent,
      replay_kernel_received_frames: r.oursKernelReceived ?? -1,
      replay_kernel_drops_frames: drops ?? -1,
      replay_seen_frames: r.ours,
      replay_decoded_frames: r.decoded,
      replay_missing_frames: r.sent - r.ours,
      replay_tcpdump_seen_frames: r.tcpdump,
      replay_tcpdump_kernel_drops_frames: r.tcpdumpKernelDrops,
    });
    verdict =
      drops === undefined
        ? `kernel drops unavailable at ${REPLAY_PPS / 1000}k pkt/s: ${r.oursKernelUnavailable ?? 'no capture stats'}`
        : drops === 0 && r.ours === r.sent
          ? `no drops at ${REPLAY_PPS / 1000}k pkt/s (${r.sent} sent, ${r.oursKernelReceived} received by the kernel, ${r.decoded} decoded)`
          : `DROPS at ${REPLAY_PPS / 1000}k pkt/s: kernel dropped ${drops} of ${r.oursKernelReceived} received (${r.sent} sent, ${r.ours} seen)`;
  } else {
    console.log('replay part skipped: needs root for namespaces and tcpreplay');
  }
  printTable('DHCP decode (one core) and capture under replay', 'peer (npm dhcp 0.2.20 / tcpdump)', rows);
  // The figures' JSON line comes last: runs are compared by it.
  if (verdict) console.log(`capture under replay: ${verdict}\n`);
  printFigures(figures);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

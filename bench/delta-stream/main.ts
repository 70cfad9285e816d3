// Benchmark: memory-delta stream throughput over loopback gRPC (our full path: frames encoded,
// gRPC stream, shadow verifying and writing the image on tmpfs, epoch acks) against raw TCP over
// loopback carrying the same number of bytes, in the same run. Receivers run as child processes.
// The two alternate (TCP, gRPC, TCP, gRPC, ...): the machine is shared, and each ratio compares a
// pair of runs made under the same load; the median pair is reported, and every pair.
// Usage: npm run bench -- delta-stream [sizeMiB=256] [pairs=3]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { loadavg } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { processTreeUsage } from '../lib/process-usage';
import { printFigures, printTable } from '../lib/report';
import { silentLogger } from '../../shared/log';
import type { FrameCodecName } from '../../shared/frame-codec';
import type { DirtyTracker } from '../../agent/memory/dirty-tracker';
import type { GuestMemory, GuestRamRegion } from '../../agent/memory/guest-memory';
import { grpcShadowChannelFactory } from '../../agent/replication/grpc-shadow-channel';
import { ReplicationSource } from '../../agent/replication/replication-source';

const DEFAULT_SIZE_MIB = 256;
const DEFAULT_PAIRS = 3;
const PAGE_BYTES = 4096;
const TCP_CHUNK_BYTES = 1 << 20;

/** Guest memory held in this process: random, incompressible pages. */
class BufferMemory implements GuestMemory {
  readonly fd = -1;
  readonly pageCount: number;
  readonly region: GuestRamRegion;
  constructor(private readonly buf: Buffer) {
    this.pageCount = buf.length / PAGE_BYTES;
    this.region = { pid: process.pid, startAddress: 0, sizeBytes: buf.length, pageSizeBytes: PAGE_BYTES, fileOffsetBytes: 0, backingPath: 'bench' };
  }
  readPages(index: number, count: number, into: Buffer): void {
    this.buf.copy(into, 0, index * PAGE_BYTES, (index + count) * PAGE_BYTES);
  }
  close(): void {}
}

/** Reports every page dirty every round: the stream carries the whole memory each time. */
class EverythingTracker implements DirtyTracker {
  readonly name = 'hash' as const;
  constructor(private readonly pages: number) {}
  async start(): Promise<void> {}
  async scan(): Promise<Uint32Array> {
    return Uint32Array.from({ length: this.pages }, (_, i) => i);
  }
  close(): void {}
}

function startReceiver(args: string[]): Promise<{ child: ChildProcess; port: number }> {
  // UMBRA_BENCH_RECEIVER_NODE_ARGS: extra node flags for the receivers (e.g. --cpu-prof to profile them).
  const nodeArgs = (process.env.UMBRA_BENCH_RECEIVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, path.join(__dirname, 'receiver-process.js'), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve({ child, port: Number(String(d).trim()) }));
    child.once('exit', (code) => reject(new Error(`receiver exited ${code}`)));
  });
}

/** One timed transfer: wall time and the CPU time of each side (ms). */
interface Run {
  ms: number;
  sourceCpuMs: number;
  receiverCpuMs: number;
}

/** CPU time of this process and of `pid` while `fn` runs, and its wall time. */
async function timed(pid: number, fn: () => Promise<void>): Promise<Run> {
  const cpu0 = process.cpuUsage();
  const r0 = processTreeUsage(pid).cpuSeconds;
  const t = process.hrtime.bigint();
  await fn();
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  return { ms, sourceCpuMs: (cpu.user + cpu.system) / 1000, receiverCpuMs: (processTreeUsage(pid).cpuSeconds - r0) * 1000 };
}

/** The peer: `totalBytes` written to a TCP sink in 1 MiB chunks, until the sink answers. */
async function rawTcp(totalBytes: number): Promise<Run> {
  const { child, port } = await startReceiver(['tcp', String(totalBytes)]);
  try {
    const chunk = Buffer.alloc(TCP_CHUNK_BYTES, 7);
    const sock = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.once('connect', resolve);
    });
    return await timed(child.pid!, () =>
      new Promise<void>((resolve, reject) => {
        sock.on('error', reject);
        sock.on('data', () => {
          sock.destroy();
          resolve();
        });
        let sent = 0;
        const pump = () => {
          while (sent < totalBytes) {
            sent += chunk.length;
            if (!sock.write(chunk)) return void sock.once('drain', pump);
          }
        };
        pump();
      }),
    );
  } finally {
    child.kill();
  }
}

/** Our path: a replication source streaming every page each round to a shadow receiver process. */
class GrpcStream {
  private constructor(
    private readonly source: ReplicationSource,
    private readonly factory: { close(): void },
    private readonly child: ChildProcess,
    private readonly dir: string,
  ) {}

  static async open(mem: Buffer, codec: FrameCodecName): Promise<GrpcStream> {
    const dir = mkdtempSync('/dev/shm/umbra-bench-');
    const { child, port } = await startReceiver(['grpc', dir]);
    const factory = grpcShadowChannelFactory(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    const memory = new BufferMemory(mem);
    const source = new ReplicationSource({
      vmId: 'bench',
      memory,
      tracker: new EverythingTracker(memory.pageCount),
      shadows: [{ id: 'shadow', channelFactory: factory }],
      codec,
      manualRounds: true,
      log: silentLogger(),
    });
    source.start();
    await source.flush(120000); // connection set-up and a first full copy (warm-up)
    return new GrpcStream(source, factory, child, dir);
  }

  /** One more full round, timed until the shadow acknowledged it. */
  async round(): Promise<Run & { wireBytes: number }> {
    const before = this.source.status().shadows[0].bytesSent;
    const run = await timed(this.child.pid!, async () => {
      await this.source.flush(120000);
    });
    return { ...run, wireBytes: this.source.status().shadows[0].bytesSent - before };
  }

  /** Frames the shadow refused (checksum or sequence) and got again: must stay 0 on loopback. */
  framesResent(): number {
    return this.source.status().shadows[0].framesResent;
  }

  async close(): Promise<void> {
    await this.source.close();
    this.factory.close();
    this.child.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main(): Promise<void> {
  const sizeMiB = Number(process.argv[2] ?? DEFAULT_SIZE_MIB);
  const pairs = Number(process.argv[3] ?? DEFAULT_PAIRS);
  const bytes = sizeMiB * 1024 * 1024;
  const mb = bytes / 1e6;
  const mem = Buffer.alloc(bytes);
  for (let off = 0; off < bytes; off += 4) mem.writeUInt32LE((Math.random() * 2 ** 32) >>> 0, off);
  // Raw TCP and our stream alternate, so that each ratio compares runs under the same machine load.
  const tcp: Run[] = [];
  const none: Run[] = [];
  const stream = await GrpcStream.open(mem, 'none');
  try {
    for (let i = 0; i < pairs; i++) {
      tcp.push(await rawTcp(bytes));
      none.push(await stream.round());
    }
    if (stream.framesResent() > 0) throw new Error(`${stream.framesResent()} frames were refused by the shadow and resent`);
  } finally {
    await stream.close();
  }
  const brotliStream = await GrpcStream.open(mem, 'brotli-0');
  let brotli: Run & { wireBytes: number };
  try {
    brotli = await brotliStream.round();
  } finally {
    await brotliStream.close();
  }
  const mbps = (r: Run) => mb / (r.ms / 1000);
  const pcts = none.map((r, i) => (100 * tcp[i].ms) / r.ms);
  const pct = median(pcts);
  const perMb = (runs: Run[], side: 'sourceCpuMs' | 'receiverCpuMs') => median(runs.map((r) => r[side] / mb));
  const load = loadavg()[0];
  printTable(`delta stream, ${sizeMiB} MiB of dirty pages per round, loopback, ${pairs} alternating pairs (medians), load ${load.toFixed(2)}`, 'raw TCP', [
    { metric: 'page throughput, gRPC stream, codec none', ours: median(none.map(mbps)), peer: median(tcp.map(mbps)), unit: 'MB/s', target: '>= 50% of raw TCP' },
    { metric: 'gRPC stream / raw TCP (median of pairs)', ours: pct, unit: '%', target: '>= 50' },
    { metric: 'gRPC stream / raw TCP, each pair', ours: pcts.map((p) => p.toFixed(1)).join(' / '), unit: '%' },
    { metric: 'sender CPU per MB', ours: perMb(none, 'sourceCpuMs'), peer: perMb(tcp, 'sourceCpuMs'), unit: 'ms' },
    { metric: 'receiver CPU per MB', ours: perMb(none, 'receiverCpuMs'), peer: perMb(tcp, 'receiverCpuMs'), unit: 'ms' },
    { metric: 'source CPU per wall time, codec none (1 = one core busy)', ours: median(none.map((r) => r.sourceCpuMs / r.ms)), unit: 'ratio' },
    { metric: 'page throughput, gRPC stream, codec brotli-0', ours: mbps(brotli), unit: 'MB/s' },
    { metric: 'wire bytes per page byte, brotli-0 (random data)', ours: brotli.wireBytes / bytes, unit: 'ratio' },
  ]);
  printFigures({
    size_mib: sizeMiB,
    pairs,
    load_avg_1m: load,
    raw_tcp_mb_per_s: median(tcp.map(mbps)),
    grpc_none_mb_per_s: median(none.map(mbps)),
    grpc_vs_tcp_pct: pct,
    grpc_vs_tcp_pct_min: Math.min(...pcts),
    grpc_sender_cpu_ms_per_mb: perMb(none, 'sourceCpuMs'),
    grpc_receiver_cpu_ms_per_mb: perMb(none, 'receiverCpuMs'),
    tcp_sender_cpu_ms_per_mb: perMb(tcp, 'sourceCpuMs'),
    tcp_receiver_cpu_ms_per_mb: perMb(tcp, 'receiverCpuMs'),
    grpc_brotli0_mb_per_s: mbps(brotli),
    // Every pair as measured (raw TCP, then gRPC), '/'-separated in pair order.
    each_pair_pct: pcts.map((p) => p.toFixed(1)).join('/'),
    each_pair_tcp_mb_per_s: tcp.map((r) => mbps(r).toFixed(1)).join('/'),
    each_pair_grpc_mb_per_s: none.map((r) => mbps(r).toFixed(1)).join('/'),
    each_pair_grpc_receiver_cpu_ms_per_mb: none.map((r) => (r.receiverCpuMs / mb).toFixed(3)).join('/'),
    each_pair_tcp_receiver_cpu_ms_per_mb: tcp.map((r) => (r.receiverCpuMs / mb).toFixed(3)).join('/'),
    each_pair_grpc_sender_cpu_ms_per_mb: none.map((r) => (r.sourceCpuMs / mb).toFixed(3)).join('/'),
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

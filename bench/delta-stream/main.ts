// Benchmark: memory-delta stream throughput over loopback gRPC (our full path: frames encoded,
// gRPC stream, shadow verifying and writing the image on tmpfs, epoch acks) against raw TCP over
// loopback carrying the same number of bytes, in the same run. Receivers run as child processes.
// Usage: npm run bench -- delta-stream [sizeMiB=256]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { printFigures, printTable } from '../lib/report';
import { silentLogger } from '../../shared/log';
import type { FrameCodecName } from '../../shared/frame-codec';
import type { DirtyTracker } from '../../agent/memory/dirty-tracker';
import type { GuestMemory, GuestRamRegion } from '../../agent/memory/guest-memory';
import { grpcShadowChannelFactory } from '../../agent/replication/grpc-shadow-channel';
import { ReplicationSource } from '../../agent/replication/replication-source';

const DEFAULT_SIZE_MIB = 256;
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

async function rawTcp(totalBytes: number): Promise<number> {
  const { child, port } = await startReceiver(['tcp', String(totalBytes)]);
  try {
    const chunk = Buffer.alloc(TCP_CHUNK_BYTES, 7);
    const t = process.hrtime.bigint();
    await new Promise<void>((resolve, reject) => {
      const sock = net.connect(port, '127.0.0.1');
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
      sock.on('connect', pump);
    });
    return Number(process.hrtime.bigint() - t) / 1e6;
  } finally {
    child.kill();
  }
}

async function grpcStream(mem: Buffer, codec: FrameCodecName): Promise<{ ms: number; wireBytes: number; sourceCpuMs: number }> {
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
  try {
    source.start();
    await source.flush(120000); // connection set-up and a first full copy (warm-up)
    const t = process.hrtime.bigint();
    const cpu0 = process.cpuUsage();
    const before = source.status().shadows[0].bytesSent;
    await source.flush(120000); // one more full round, timed until the shadow acknowledged it
    const ms = Number(process.hrtime.bigint() - t) / 1e6;
    const cpu = process.cpuUsage(cpu0);
    return { ms, wireBytes: source.status().shadows[0].bytesSent - before, sourceCpuMs: (cpu.user + cpu.system) / 1000 };
  } finally {
    await source.close();
    factory.close();
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const sizeMiB = Number(process.argv[2] ?? DEFAULT_SIZE_MIB);
  const bytes = sizeMiB * 1024 * 1024;
  const mem = Buffer.alloc(bytes);
  for (let off = 0; off < bytes; off += 4) mem.writeUInt32LE((Math.random() * 2 ** 32) >>> 0, off);
  const tcpMs = await rawTcp(bytes);
  const none = await grpcStream(mem, 'none');
  const brotli = await grpcStream(mem, 'brotli-0');
  const mbps = (ms: number) => bytes / 1e6 / (ms / 1000);
  const pct = (100 * tcpMs) / none.ms;
  printTable(`delta stream, ${sizeMiB} MiB of dirty pages per round, loopback`, 'raw TCP', [
    { metric: 'page throughput, gRPC stream, codec none', ours: mbps(none.ms), peer: mbps(tcpMs), unit: 'MB/s', target: '>= 50% of raw TCP' },
    { metric: 'gRPC stream / raw TCP', ours: pct, unit: '%', target: '>= 50' },
    { metric: 'source CPU per wall time, codec none (1 = one core busy)', ours: none.sourceCpuMs / none.ms, unit: 'ratio' },
    { metric: 'page throughput, gRPC stream, codec brotli-0', ours: mbps(brotli.ms), unit: 'MB/s' },
    { metric: 'wire bytes per page byte, brotli-0 (random data)', ours: brotli.wireBytes / bytes, unit: 'ratio' },
  ]);
  printFigures({
    size_mib: sizeMiB,
    raw_tcp_mb_per_s: mbps(tcpMs),
    grpc_none_mb_per_s: mbps(none.ms),
    grpc_vs_tcp_pct: pct,
    grpc_brotli0_mb_per_s: mbps(brotli.ms),
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

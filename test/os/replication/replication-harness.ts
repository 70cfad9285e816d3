// Test harness: a source process (shm-writer), shadow receivers behind real gRPC servers on
// loopback, and the replication source between them. Every resource is released by close().
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { LevelStore } from '../../../shared/level-store';
import { serviceDefinition } from '../../../shared/proto';
import { silentLogger } from '../../../shared/log';
import type { TrackerName } from '../../../agent/memory/dirty-tracker';
import { locateGuestRam, ProcGuestMemory } from '../../../agent/memory/proc-guest-memory';
import { createTracker } from '../../../agent/memory/tracker-selector';
import { grpcShadowChannelFactory } from '../../../agent/replication/grpc-shadow-channel';
import { ReplicationReceiver, type ReplicationReceiverOptions } from '../../../agent/replication/replication-receiver';
import { REPLICATION_SERVICE_NAME, replicationServiceHandlers } from '../../../agent/replication/replication-service';
import { ReplicationSource } from '../../../agent/replication/replication-source';
import type { ShadowChannelFactory } from '../../../agent/replication/shadow-channel';
import { shadowImagePath } from '../../../agent/replication/shadow-image';
import { ShmWriterProcess } from './shm-writer-process';

export class ShadowHost {
  server: grpc.Server | undefined;
  receiver: ReplicationReceiver | undefined;
  store: LevelStore | undefined;
  port = 0;

  constructor(readonly id: string, readonly dataDir: string) {}

  async start(port = 0, options: Pick<ReplicationReceiverOptions, 'digestOnFullResend' | 'seedFrom'> = {}): Promise<void> {
    this.store = await LevelStore.open(path.join(this.dataDir, 'db'));
    this.receiver = new ReplicationReceiver({ imageDir: this.dataDir, store: this.store, log: silentLogger(), ...options });
    this.server = new grpc.Server({ 'grpc.max_receive_message_length': 16 << 20 });
    this.server.addService(serviceDefinition(REPLICATION_SERVICE_NAME), replicationServiceHandlers(this.receiver));
    this.port = await new Promise<number>((resolve, reject) =>
      this.server!.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
  }

  /** Stops like a crash of the agent: streams cut, state only what was persisted. */
  async stop(): Promise<void> {
    this.server?.forceShutdown();
    await this.receiver?.close();
    await this.store?.close();
    this.server = undefined;
    this.receiver = undefined;
    this.store = undefined;
  }

  image(vmId: string): Buffer {
    return readFileSync(shadowImagePath(this.dataDir, vmId));
  }
}

export class ReplicationHarness {
  readonly dirs: string[] = [];
  readonly shadows: ShadowHost[] = [];
  readonly factories: Array<ShadowChannelFactory & { close(): void }> = [];
  writer!: ShmWriterProcess;
  memory!: ProcGuestMemory;
  source!: ReplicationSource;

  async start(opts: {
    pageCount: number;
    tracker: TrackerName;
    shadows: Array<{ id: string; dataDir?: string; wrap?: (f: ShadowChannelFactory) => ShadowChannelFactory }>;
    vmId?: string;
  }): Promise<void> {
    this.writer = await ShmWriterProcess.start(opts.pageCount, opts.tracker === 'uffd-wp');
    await this.attach({ ...opts, pid: this.writer.pid, sizeBytes: this.writer.sizeBytes, pathContains: 'memfd:umbra-test-ram' });
  }

  /** Replicates the RAM of an existing process (e.g. a QEMU guest) instead of a shm-writer. */
  async attach(opts: {
    pid: number;
    sizeBytes: number;
    pathContains?: string;
    tracker: TrackerName;
    shadows: Array<{ id: string; dataDir?: string; wrap?: (f: ShadowChannelFactory) => ShadowChannelFactory }>;
    vmId?: string;
  }): Promise<void> {
    const region = locateGuestRam(opts.pid, { sizeBytes: opts.sizeBytes, pathContains: opts.pathContains });
    this.memory = ProcGuestMemory.open(region);
    const tracker = createTracker(opts.tracker, this.memory);
    await tracker.start();
    const targets = [];
    for (const s of opts.shadows) {
      const dir = s.dataDir ?? this.tempDir();
      const host = new ShadowHost(s.id, dir);
      await host.start();
      this.shadows.push(host);
      const f = grpcShadowChannelFactory(`127.0.0.1:${host.port}`, grpc.credentials.createInsecure());
      this.factories.push(f);
      targets.push({ id: s.id, channelFactory: s.wrap ? s.wrap(f) : f });
    }
    this.source = new ReplicationSource({
      vmId: opts.vmId ?? 'vm-test',
      memory: this.memory,
      tracker,
      shadows: targets,
      codec: 'brotli-0',
      manualRounds: true, // the tests drive rounds with runRound / flush
      log: silentLogger(),
    });
    this.source.start();
  }

  tempDir(): string {
    const d = mkdtempSync(path.join(tmpdir(), 'umbra-repl-'));
    this.dirs.push(d);
    return d;
  }

  /** The source's guest RAM, read now. */
  sourceRam(): Buffer {
    const buf = Buffer.alloc(this.memory.pageCount * this.memory.region.pageSizeBytes);
    this.memory.readPages(0, this.memory.pageCount, buf);
    return buf;
  }

  async close(): Promise<void> {
    await this.source?.close().catch(() => undefined);
    for (const f of this.factories) f.close();
    for (const s of this.shadows) await s.stop().catch(() => undefined);
    this.memory?.close();
    this.writer?.close();
    for (const d of this.dirs) {
      try {
        rmSync(d, { recursive: true, force: true });
      } catch {
        // a mount point the test removes after unmounting it
      }
    }
  }
}

/** Index of the first differing byte's page, or -1 (for readable assertion messages). */
export function firstDifferentPage(a: Buffer, b: Buffer, pageSizeBytes: number): number {
  if (a.length !== b.length) return -2;
  for (let off = 0; off < a.length; off += pageSizeBytes) {
    if (a.compare(b, off, off + pageSizeBytes, off, off + pageSizeBytes) !== 0) return off / pageSizeBytes;
  }
  return -1;
}

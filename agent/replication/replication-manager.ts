// Source-side replication of this host's VMs: which VMs the agent can replicate (their memory
// locators), one ReplicationSource per replicating VM with its shadow set, and the commands the
// coordinator (or another agent module) gives: start, update shadows, flush, resume, stop.
import type { Logger } from 'pino';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../../shared/errors';
import type { FrameCodecName } from '../../shared/frame-codec';
import { KeyedMutex } from '../../shared/keyed-mutex';
import type { DirtyTracker, TrackerName } from '../memory/dirty-tracker';
import type { GuestMemory } from '../memory/guest-memory';
import type { GuestMemoryLocator } from '../memory/guest-process-locator';
import type { TrackerAttempt } from '../memory/tracker-selector';
import { ReplicationSource, type ReplicationSourceStatus } from './replication-source';
import type { ShadowChannelFactory } from './shadow-channel';

/** A shadow host the coordinator named, and where its agent listens. */
export interface ShadowEndpoint {
  hostId: string;
  endpoint: string;
}

/** The OS-facing pieces the manager needs (real ones in replication-module.ts, fakes in tests). */
export interface ReplicationManagerDeps {
  hostId: string;
  /** Finds and opens the VM's RAM now. */
  openGuest(vmId: string, locator: GuestMemoryLocator): GuestMemory;
  /**
   * Where the VM's guest runs here now, as the vm module knows it (launched, discovered, or a
   * shadow promoted by a switchover); undefined leaves the registered locator. Asked at each start:
   * a VM that moved away and back runs in another QEMU than the one its config names.
   */
  currentLocator?(vmId: string): Promise<GuestMemoryLocator | undefined>;
  /** Starts the best tracker in `order` that works, with why the others did not. */
  selectTracker(memory: GuestMemory, order: readonly TrackerName[]): Promise<{ tracker: DirtyTracker; attempts: TrackerAttempt[] }>;
  /** A channel factory to the shadow agent `hostId` at `endpoint` (pinned to its identity). */
  channelFactory(hostId: string, endpoint: string): ShadowChannelFactory & { close(): void };
  log: Logger;
}

export interface ReplicationTuning {
  bandwidthBudgetBytesPerSec: number;
  minRoundIntervalMs: number;
  maxRoundIntervalMs: number;
  windowBytes: number;
  codec: FrameCodecName;
  /** Codec of a flush's frames; default `codec`. */
  flushCodec?: FrameCodecName;
  trackers: readonly TrackerName[];
}

export interface SourceStatus extends ReplicationSourceStatus {
  trackerAttempts: TrackerAttempt[];
  memoryBytes: number;
  endpoints: Record<string, string>;
  startedAtMs: number;
}

interface RunningSource {
  source: ReplicationSource;
  memory: GuestMemory;
  attempts: TrackerAttempt[];
  shadows: Map<string, { endpoint: string; factory: ShadowChannelFactory & { close(): void } }>;
  startedAtMs: number;
}

export class ReplicationManager {
  private readonly known = new Map<string, GuestMemoryLocator>();
  private readonly running = new Map<string, RunningSource>();
  private readonly locks = new KeyedMutex();
  private closed = false;

  constructor(private readonly deps: ReplicationManagerDeps, private readonly tuning: ReplicationTuning) {}

  /** Makes a VM replicable (config, or VM discovery); replaces its locator if already known. */
  registerVm(vmId: string, locator: GuestMemoryLocator): void {
    this.known.set(vmId, { ...locator });
  }

  /** Forgets a VM, stopping its replication first. */
  async unregisterVm(vmId: string): Promise<void> {
    await this.stop(vmId);
    this.known.delete(vmId);
  }

  knownVms(): string[] {
    return [...this.known.keys()].sort();
  }

  isReplicating(vmId: string): boolean {
    return this.running.has(vmId);
  }

  /** Starts replicating `vmId` to `shadows`; on a VM already replicating, updates its shadow set. */
  start(vmId: string, shadows: ShadowEndpoint[]): Promise<SourceStatus> {
    return this.locks.run(vmId, async () => {
      this.checkShadows(shadows);
      const existing = this.running.get(vmId);
      if (existing) {
        this.applyShadows(vmId, existing, shadows);
        return this.statusOf(vmId, existing);
      }
      if (this.closed) throw new FailedPreconditionError('replication is shutting down');
      const locator = (await this.deps.currentLocator?.(vmId)) ?? this.known.get(vmId);
      if (!locator) throw new NotFoundError('replicable vm', vmId);
      const memory = this.deps.openGuest(vmId, locator);
      let selection: { tracker: DirtyTracker; attempts: TrackerAttempt[] };
      try {
        selection = await this.deps.selectTracker(memory, this.tuning.trackers);
      } catch (err) {
        memory.close();
        throw err;
      }
      const source = new ReplicationSource({
        vmId,
        memory,
        tracker: selection.tracker,
        shadows: [],
        codec: this.tuning.codec,
        flushCodec: this.tuning.flushCodec,
        bandwidthBudgetBytesPerSec: this.tuning.bandwidthBudgetBytesPerSec,
        minRoundIntervalMs: this.tuning.minRoundIntervalMs,
        maxRoundIntervalMs: this.tuning.maxRoundIntervalMs,
        windowBytes: this.tuning.windowBytes,
        sourceHostId: this.deps.hostId,
        log: this.deps.log.child({ vmId }),
      });
      const run: RunningSource = { source, memory, attempts: selection.attempts, shadows: new Map(), startedAtMs: Date.now() };
      this.running.set(vmId, run);
      // Start before adding shadows: start() connects links still 'connecting', and addShadow() already does.
      source.start();
      this.applyShadows(vmId, run, shadows);
      this.deps.log.info(
        { vmId, tracker: selection.tracker.name, attempts: selection.attempts, shadows: shadows.map((s) => s.hostId), memoryBytes: memory.pageCount * memory.region.pageSizeBytes },
        'replication started',
      );
      return this.statusOf(vmId, run);
    });
  }

  /** Replaces the shadow set of a replicating VM (NOT_FOUND when it is not replicating). */
  updateShadows(vmId: string, shadows: ShadowEndpoint[]): Promise<SourceStatus> {
    return this.locks.run(vmId, async () => {
      this.checkShadows(shadows);
      const run = this.requireRunning(vmId);
      this.applyShadows(vmId, run, shadows);
      return this.statusOf(vmId, run);
    });
  }

  /** Stops replicating; false when the VM was not replicating. Shadow images stay. */
  stop(vmId: string): Promise<boolean> {
    return this.locks.run(vmId, async () => {
      const run = this.running.get(vmId);
      if (!run) return false;
      this.running.delete(vmId);
      await this.release(run);
      this.deps.log.info({ vmId }, 'replication stopped');
      return true;
    });
  }

  /**
   * Final delta of a paused guest: resolves with the epoch every shadow acknowledged and how long
   * it took. The round loop stays stopped until resume(). `waitFor`: the shadow hosts whose
   * acknowledgement it waits for (all when absent or empty).
   */
  flush(vmId: string, timeoutMs: number, waitFor?: readonly string[]): Promise<{ finalEpoch: number; flushMs: number }> {
    return this.locks.run(vmId, async () => {
      const run = this.requireRunning(vmId);
      if (run.shadows.size === 0) throw new FailedPreconditionError(`vm '${vmId}' has no shadows to flush to`);
      const only = this.shadowSubset(vmId, run, waitFor);
      const t0 = performance.now();
      const finalEpoch = await run.source.flush(timeoutMs, only);
      const flushMs = performance.now() - t0;
      this.deps.log.info({ vmId, finalEpoch, flushMs: Math.round(flushMs * 100) / 100 }, 'replication flushed');
      return { finalEpoch, flushMs };
    });
  }

  /** Before the guest's pause: no new round, and what was sent acknowledged (bounded); see ReplicationSource.quiesce. */
  quiesce(vmId: string, maxWaitMs: number, waitFor?: readonly string[]): Promise<{ waitedMs: number; drained: boolean }> {
    return this.locks.run(vmId, async () => {
      const run = this.requireRunning(vmId);
      return run.source.quiesce(maxWaitMs, this.shadowSubset(vmId, run, waitFor));
    });
  }

  /** The named shadows as a set (undefined: all); a host that is no shadow of the VM is refused. */
  private shadowSubset(vmId: string, run: RunningSource, hosts?: readonly string[]): ReadonlySet<string> | undefined {
    if (!hosts || hosts.length === 0) return undefined;
    for (const h of hosts) if (!run.shadows.has(h)) throw new FailedPreconditionError(`'${h}' is no shadow of vm '${vmId}' here (shadows: ${[...run.shadows.keys()].join(', ')})`);
    return new Set(hosts);
  }

  /** Restarts the round loop after a flush (e.g. a rolled-back switchover). */
  resume(vmId: string): Promise<void> {
    return this.locks.run(vmId, async () => this.requireRunning(vmId).source.resume());
  }

  /**
   * Shadow `hostId`'s image of `vmId` is invalid (a guest may have run on it): it is discarded and
   * that shadow gets a full copy, the others keep streaming. NOT_FOUND when the VM does not
   * replicate here or `hostId` is not one of its shadows.
   */
  resyncShadow(vmId: string, hostId: string, reason: string): Promise<SourceStatus> {
    return this.locks.run(vmId, async () => {
      const run = this.requireRunning(vmId);
      if (!run.shadows.has(hostId) || !run.source.resyncShadow(hostId, reason)) throw new NotFoundError(`shadow of vm '${vmId}'`, hostId);
      this.deps.log.warn({ vmId, shadow: hostId, reason }, 'shadow image declared invalid; full copy requested');
      return this.statusOf(vmId, run);
    });
  }

  /** Every replicating VM's status, or one VM's (NOT_FOUND when not replicating). */
  status(vmId?: string): SourceStatus[] {
    if (vmId) return [this.statusOf(vmId, this.requireRunning(vmId))];
    return [...this.running.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([id, run]) => this.statusOf(id, run));
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.running.keys()].map((id) => this.stop(id)));
  }

  private requireRunning(vmId: string): RunningSource {
    const run = this.running.get(vmId);
    if (run) return run;
    if (this.known.has(vmId)) throw new NotFoundError('replication of vm', vmId);
    throw new NotFoundError('replicable vm', vmId);
  }

  private checkShadows(shadows: ShadowEndpoint[]): void {
    const seen = new Set<string>();
    shadows.forEach((s, i) => {
      if (s.hostId === this.deps.hostId) throw new InvalidArgumentError(`shadows[${i}].host_id`, `'${s.hostId}' is this (source) host`);
      if (seen.has(s.hostId)) throw new InvalidArgumentError(`shadows[${i}].host_id`, `duplicate shadow host '${s.hostId}'`);
      seen.add(s.hostId);
    });
  }

  private applyShadows(vmId: string, run: RunningSource, shadows: ShadowEndpoint[]): void {
    const wanted = new Map(shadows.map((s) => [s.hostId, s.endpoint]));
    for (const [hostId, cur] of [...run.shadows]) {
      if (wanted.get(hostId) === cur.endpoint) continue;
      run.source.removeShadow(hostId);
      cur.factory.close();
      run.shadows.delete(hostId);
      this.deps.log.info({ vmId, shadow: hostId }, 'shadow removed from replication');
    }
    for (const [hostId, endpoint] of wanted) {
      if (run.shadows.has(hostId)) continue;
      const factory = this.deps.channelFactory(hostId, endpoint);
      run.shadows.set(hostId, { endpoint, factory });
      run.source.addShadow({ id: hostId, channelFactory: factory });
      this.deps.log.info({ vmId, shadow: hostId, endpoint }, 'shadow added to replication');
    }
  }

  private statusOf(vmId: string, run: RunningSource): SourceStatus {
    return {
      ...run.source.status(),
      trackerAttempts: run.attempts,
      memoryBytes: run.memory.pageCount * run.memory.region.pageSizeBytes,
      endpoints: Object.fromEntries([...run.shadows].map(([h, s]) => [h, s.endpoint])),
      startedAtMs: run.startedAtMs,
    };
  }

  private async release(run: RunningSource): Promise<void> {
    await run.source.close();
    for (const s of run.shadows.values()) s.factory.close();
    run.memory.close();
  }
}

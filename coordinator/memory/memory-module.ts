// Coordinator module `memory`: memory shadows (replication of a VM's RAM from its source host to
// shadow hosts), the MemoryService API, and a periodic resync of replication agents lost. Other
// modules (switchover) use the MemoryShadowApi of the running module: ctx.modules.get('memory').
import type { ConfigReader } from '../../shared/config-reader';
import { errorMessage } from '../../shared/errors';
import type { CoordinatorModuleDefinition, RunningCoordinatorModule } from '../coordinator-module';
import { GrpcMemoryAgentPort } from './grpc-memory-agent-port';
import { memoryService } from './memory-service';
import { DEFAULT_READY_MAX_LAG_BYTES, MemoryShadowManager, type MemoryShadowRecord, type MemoryShadowView } from './memory-shadow-manager';

export const DEFAULT_RESYNC_INTERVAL_MS = 10_000;

export interface MemoryCoordinatorConfig {
  /** How often replication that a source agent lost (restart) is started again; 0 = never. */
  resyncIntervalMs: number;
  /** Lag above which a memory shadow is not ready for a switchover. */
  readyMaxLagBytes: number;
}

export function parseMemoryCoordinatorConfig(r: ConfigReader, raw: unknown, path: string): MemoryCoordinatorConfig {
  const m = r.mapping(raw, path, ['resync_interval_ms', 'ready_max_lag_bytes']);
  return {
    resyncIntervalMs: r.integer(m, 'resync_interval_ms', path, { default: DEFAULT_RESYNC_INTERVAL_MS, min: 0 }),
    readyMaxLagBytes: r.integer(m, 'ready_max_lag_bytes', path, { default: DEFAULT_READY_MAX_LAG_BYTES, min: 0 }),
  };
}

/** The four calls a VM switchover makes on memory shadows (coordinator/switchover MemoryPort's shape). */
export interface SwitchoverMemoryPort {
  notReadyReason(vmId: string, sourceHost: string, hostId: string): Promise<string | undefined>;
  flush(vmId: string, timeoutMs: number): Promise<{ finalEpoch: number; flushMs: number; shadowHosts: string[] }>;
  resume(vmId: string): Promise<void>;
  stop(vmId: string): Promise<void>;
  resyncShadow(vmId: string, hostId: string, reason: string): Promise<void>;
}

/** What a switchover (or any module) calls on the running `memory` module. */
export interface MemoryShadowApi {
  /** Starts or reshapes replication of `vmId` from `sourceHost` to `shadowHosts`. */
  startMemoryShadow(vmId: string, sourceHost: string, shadowHosts: string[], opts?: { auto?: boolean }): Promise<MemoryShadowView>;
  stopMemoryShadow(vmId: string): Promise<void>;
  /**
   * With the guest paused by the caller: sends the last delta and resolves with the epoch every
   * shadow acknowledged (UNAVAILABLE naming lagging shadows after timeoutMs). Rounds stay stopped.
   */
  flushMemoryShadow(vmId: string, timeoutMs?: number): Promise<{ finalEpoch: number; flushMs: number; shadowHosts: string[] }>;
  /** A flush the source agent ran itself (a switchover's chained switch-out): its final epoch is recorded. */
  noteMemoryShadowFlushed(vmId: string, sourceHost: string, finalEpoch: number): Promise<void>;
  /** Restarts rounds after a flush (switchover rolled back). */
  resumeMemoryShadow(vmId: string): Promise<void>;
  /**
   * Shadow `hostId`'s image is invalid (the guest may have run on it): it is discarded and sent
   * again in full while the other shadows keep streaming; not ready until the source accepted it.
   */
  resyncMemoryShadow(vmId: string, hostId: string, reason: string): Promise<void>;
  /** Every memory shadow record (no agent call). */
  memoryShadowRecords(): MemoryShadowRecord[];
  /** VMs whose replication an operator stopped (not restarted by the coordinator). */
  memoryStoppedByOperator(): ReadonlySet<string>;
  /** The memory shadow record of a VM (undefined when not shadowed). */
  memoryShadow(vmId: string): MemoryShadowRecord | undefined;
  /** Records with live status from the source agents. */
  listMemoryShadows(vmId?: string): Promise<MemoryShadowView[]>;
  /** Why `hostId` cannot take a switchover of `vmId` from `sourceHost` now; undefined when it can. */
  memoryNotReadyReason(vmId: string, sourceHost: string, hostId: string): Promise<string | undefined>;
  /** The same calls in the shape the VM switchover's MemoryPort asks for. */
  switchoverPort: SwitchoverMemoryPort;
}

export type RunningMemoryModule = RunningCoordinatorModule & MemoryShadowApi;

export const memoryCoordinatorModule: CoordinatorModuleDefinition<MemoryCoordinatorConfig> = {
  name: 'memory',
  parseConfig: parseMemoryCoordinatorConfig,
  async start(config, ctx): Promise<RunningMemoryModule> {
    const log = ctx.logger;
    const manager = await MemoryShadowManager.open({
      store: ctx.store,
      hosts: { endpointOf: (hostId) => ctx.hosts.get(hostId).facts.agent_endpoint },
      agents: new GrpcMemoryAgentPort(ctx.agents),
      events: ctx.events,
      logger: log,
    });
    let resyncing = false;
    const timer =
      config.resyncIntervalMs > 0
        ? setInterval(() => {
            if (resyncing) return;
            resyncing = true;
            manager
              .resync()
              .then((vms) => vms.length > 0 && log.info({ vms }, 'memory shadows restarted on their source'))
              .catch((err) => log.warn({ err: errorMessage(err) }, 'memory shadow resync failed'))
              .finally(() => (resyncing = false));
          }, config.resyncIntervalMs)
        : undefined;
    timer?.unref();
    log.info({ shadows: manager.listRecords().length }, 'memory started');
    return {
      services: [memoryService({ manager, logger: log })],
      startMemoryShadow: (vmId, source, shadows, opts) => manager.start(vmId, source, shadows, opts),
      memoryShadowRecords: () => manager.listRecords(),
      memoryStoppedByOperator: () => manager.stoppedByOperator(),
      resyncMemoryShadow: (vmId, hostId, reason) => manager.resyncShadow(vmId, hostId, reason),
      stopMemoryShadow: (vmId) => manager.stop(vmId),
      flushMemoryShadow: (vmId, timeoutMs) => manager.flush(vmId, timeoutMs),
      noteMemoryShadowFlushed: (vmId, sourceHost, finalEpoch) => manager.noteFlushed(vmId, sourceHost, finalEpoch),
      resumeMemoryShadow: (vmId) => manager.resume(vmId),
      memoryShadow: (vmId) => manager.get(vmId),
      listMemoryShadows: (vmId) => manager.list(vmId),
      memoryNotReadyReason: (vmId, source, hostId) => manager.notReadyReason(vmId, source, hostId, config.readyMaxLagBytes),
      switchoverPort: {
        notReadyReason: (vmId, source, hostId) => manager.notReadyReason(vmId, source, hostId, config.readyMaxLagBytes),
        flush: (vmId, timeoutMs) => manager.flush(vmId, timeoutMs),
        resume: (vmId) => manager.resume(vmId),
        stop: (vmId) => manager.stop(vmId),
        resyncShadow: (vmId, hostId, reason) => manager.resyncShadow(vmId, hostId, reason),
      },
      async close() {
        if (timer) clearInterval(timer);
      },
    };
  },
};

// Memory shadows of VMs (pure logic over ports): which source host replicates a VM's RAM to which
// shadow hosts, persisted; start/stop/flush/resume through the source agent, live status, and a
// resync that restarts replication an agent lost (e.g. after its restart).
import type { Logger } from 'pino';
import { InvalidArgumentError, NotFoundError, errorMessage, isUmbraError } from '../../shared/errors';
import type { EventKind } from '../../shared/host-types';
import type { KvStore } from '../../shared/kv-store';
import { KeyedMutex } from '../../shared/keyed-mutex';
import type { AgentSourceStatus, MemoryAgentPort } from './memory-agent-port';

const KEY_PREFIX = 'memory/shadow/';
/** VMs whose replication an operator stopped: the coordinator does not start it again by itself. */
const OPERATOR_STOPPED_PREFIX = 'memory/operator-stopped/';
const RECORD_VERSION = 1;
export const DEFAULT_FLUSH_TIMEOUT_MS = 30_000;
/** A shadow lagging more than this is not ready for a switchover. */
export const DEFAULT_READY_MAX_LAG_BYTES = 64 * 1024 * 1024;

export interface MemoryShadowRecord {
  version: number;
  vm_id: string;
  source_host: string;
  shadow_hosts: string[];
  started_at_unix_ms: number;
  last_final_epoch: number;
  /**
   * Shadow hosts whose image was declared invalid (a guest may have run on it) and whose source
   * has not yet accepted the re-sync: not ready for a switchover; resync() retries them.
   */
  resync_pending?: string[];
  /**
   * Started by the coordinator because the VM's IP shadows are on these hosts (absent: by an
   * operator). Only such a replication is reshaped or stopped when the placement changes.
   */
  auto?: boolean;
}

export interface MemoryShadowView {
  record: MemoryShadowRecord;
  status?: AgentSourceStatus;
  statusError: string;
}

/** Where hosts' agents listen (the host registry). Throws NotFoundError for an unknown host. */
export interface HostEndpoints {
  endpointOf(hostId: string): string;
}

/** The audit log (coordinator/core/event-log.ts), as far as this manager writes to it. */
export interface MemoryEventSink {
  append(e: { kind: EventKind; host_id: string; vm_id: string; message: string; attributes: Record<string, string> }): Promise<unknown>;
}

export interface MemoryShadowManagerDeps {
  store: KvStore;
  hosts: HostEndpoints;
  agents: MemoryAgentPort;
  events?: MemoryEventSink;
  logger: Logger;
  clock?: () => number;
}

export class MemoryShadowManager {
  private readonly records = new Map<string, MemoryShadowRecord>();
  private readonly operatorStopped = new Set<string>();
  private readonly locks = new KeyedMutex();
  private readonly now: () => number;

  private constructor(private readonly deps: MemoryShadowManagerDeps) {
    this.now = deps.clock ?? Date.now;
  }

  static async open(deps: MemoryShadowManagerDeps): Promise<MemoryShadowManager> {
    const m = new MemoryShadowManager(deps);
    for (const { value } of await deps.store.list<MemoryShadowRecord>(KEY_PREFIX)) {
      if (value.version === RECORD_VERSION) m.records.set(value.vm_id, value);
    }
    for (const { value } of await deps.store.list<{ vm_id: string }>(OPERATOR_STOPPED_PREFIX)) m.operatorStopped.add(value.vm_id);
    return m;
  }

  get(vmId: string): MemoryShadowRecord | undefined {
    return this.records.get(vmId);
  }

  /** VMs whose replication an operator stopped and has not started again (left alone by the coordinator). */
  stoppedByOperator(): ReadonlySet<string> {
    return this.operatorStopped;
  }

  listRecords(): MemoryShadowRecord[] {
    return [...this.records.values()].sort((a, b) => a.vm_id.localeCompare(b.vm_id));
  }

  /**
   * Starts (or reshapes) replication of `vmId` from `sourceHost` to `shadowHosts`; `auto` marks one
   * the coordinator started to follow IP shadow placement (an operator's call makes it manual).
   */
  start(vmId: string, sourceHost: string, shadowHosts: string[], opts: { auto?: boolean } = {}): Promise<MemoryShadowView> {
    return this.locks.run(vmId, async () => {
      if (shadowHosts.length === 0) throw new InvalidArgumentError('shadow_hosts', 'needs at least one shadow host');
      const seen = new Set<string>();
      shadowHosts.forEach((h, i) => {
        if (h === sourceHost) throw new InvalidArgumentError(`shadow_hosts[${i}]`, `'${h}' is the source host`);
        if (seen.has(h)) throw new InvalidArgumentError(`shadow_hosts[${i}]`, `duplicate host '${h}'`);
        seen.add(h);
      });
      this.deps.hosts.endpointOf(sourceHost); // NOT_FOUND before any agent call
      const targets = shadowHosts.map((h) => ({ host_id: h, endpoint: this.deps.hosts.endpointOf(h) }));
      const prior = this.records.get(vmId);
      if (prior && prior.source_host !== sourceHost) {
        // The VM moved (or the caller names another source): the old source stops first.
        await this.deps.agents.stop(prior.source_host, vmId).catch((err) => this.deps.logger.warn({ vmId, host: prior.source_host, err: errorMessage(err) }, 'stopping the previous source failed'));
      }
      const status = await this.deps.agents.start(sourceHost, vmId, targets);
      const record: MemoryShadowRecord = {
        version: RECORD_VERSION,
        vm_id: vmId,
        source_host: sourceHost,
        shadow_hosts: [...shadowHosts],
        started_at_unix_ms: prior && prior.source_host === sourceHost ? prior.started_at_unix_ms : this.now(),
        last_final_epoch: prior && prior.source_host === sourceHost ? prior.last_final_epoch : 0,
        ...(opts.auto ? { auto: true } : {}),
      };
      const pending = prior && prior.source_host === sourceHost ? (prior.resync_pending ?? []).filter((h) => shadowHosts.includes(h)) : [];
      if (pending.length > 0) record.resync_pending = pending;
      await this.save(record);
      if (!opts.auto && this.operatorStopped.delete(vmId)) await this.deps.store.del(OPERATOR_STOPPED_PREFIX + vmId);
      this.deps.logger.info({ vmId, source: sourceHost, shadows: shadowHosts, tracker: status.tracker, auto: opts.auto === true }, 'memory shadow started');
      await this.audit('EVENT_KIND_MEMORY_SHADOW_STARTED', sourceHost, vmId, `memory of ${vmId} replicating from ${sourceHost} to ${shadowHosts.join(', ')} (${status.tracker})`, {
        shadows: shadowHosts.join(','),
        tracker: status.tracker,
      });
      return { record, status, statusError: '' };
    });
  }

  /**
   * Stops replication; the record goes even when the source agent cannot be reached (it keeps
   * nothing across restarts). `byOperator`: the coordinator does not start it again by itself
   * (memory following the IP shadows) until an operator starts it.
   */
  stop(vmId: string, opts: { byOperator?: boolean } = {}): Promise<void> {
    return this.locks.run(vmId, async () => {
      const record = this.require(vmId);
      try {
        await this.deps.agents.stop(record.source_host, vmId);
      } catch (err) {
        if (!(isUmbraError(err) && (err.reason === 'UNAVAILABLE' || err.reason === 'NOT_FOUND' || err.reason === 'DEADLINE_EXCEEDED'))) throw err;
        this.deps.logger.warn({ vmId, host: record.source_host, err: errorMessage(err) }, 'source agent not reached; forgetting the memory shadow anyway');
      }
      if (opts.byOperator && !this.operatorStopped.has(vmId)) {
        await this.deps.store.put(OPERATOR_STOPPED_PREFIX + vmId, { vm_id: vmId, at_unix_ms: this.now() });
        this.operatorStopped.add(vmId);
      }
      await this.deps.store.del(KEY_PREFIX + vmId);
      this.records.delete(vmId);
      this.deps.logger.info({ vmId, source: record.source_host }, 'memory shadow stopped');
      await this.audit('EVENT_KIND_MEMORY_SHADOW_STOPPED', record.source_host, vmId, `memory replication of ${vmId} from ${record.source_host} stopped`, {});
    });
  }

  /**
   * A final flush the source agent ran on its own (inside a switchover's one-call switch-out): the
   * record keeps its epoch, as after flush(). The switchover audits it; a record replaced meanwhile
   * (another source) is left alone.
   */
  noteFlushed(vmId: string, sourceHost: string, finalEpoch: number): Promise<void> {
    return this.locks.run(vmId, async () => {
      const record = this.records.get(vmId);
      if (!record || record.source_host !== sourceHost) return;
      await this.save({ ...record, last_final_epoch: finalEpoch });
    });
  }

  /** Final delta of a paused guest (the caller paused it): the epoch every shadow acknowledged. */
  flush(vmId: string, timeoutMs = DEFAULT_FLUSH_TIMEOUT_MS): Promise<{ finalEpoch: number; flushMs: number; shadowHosts: string[] }> {
    return this.locks.run(vmId, async () => {
      const record = this.require(vmId);
      const r = await this.deps.agents.flush(record.source_host, vmId, timeoutMs);
      await this.save({ ...record, last_final_epoch: r.finalEpoch });
      await this.audit('EVENT_KIND_MEMORY_SHADOW_FLUSHED', record.source_host, vmId, `memory of ${vmId} flushed: epoch ${r.finalEpoch} on ${record.shadow_hosts.join(', ')}`, {
        final_epoch: String(r.finalEpoch),
        flush_ms: r.flushMs.toFixed(2),
        shadows: record.shadow_hosts.join(','),
      });
      return { ...r, shadowHosts: [...record.shadow_hosts] };
    });
  }

  /**
   * Shadow `hostId`'s image of `vmId` is invalid (the guest may have run on it, e.g. during a
   * rolled-back switchover): the source agent makes that shadow discard its image and sends it a
   * full copy while the other shadows keep streaming. The request is persisted first: if the
   * source cannot be reached it stays pending (the shadow is not ready) and resync() retries it.
   */
  resyncShadow(vmId: string, hostId: string, reason: string): Promise<void> {
    return this.locks.run(vmId, async () => {
      const record = this.require(vmId);
      if (!record.shadow_hosts.includes(hostId)) throw new NotFoundError(`memory shadow of vm '${vmId}' on host`, hostId);
      const pending = new Set(record.resync_pending ?? []);
      pending.add(hostId);
      await this.save({ ...record, resync_pending: [...pending].sort() });
      await this.sendResync(vmId, hostId, reason);
    });
  }

  private async sendResync(vmId: string, hostId: string, reason: string): Promise<void> {
    const record = this.require(vmId);
    await this.deps.agents.resyncShadow(record.source_host, vmId, hostId, reason);
    const latest = this.require(vmId);
    const left = (latest.resync_pending ?? []).filter((h) => h !== hostId);
    const next = { ...latest };
    if (left.length > 0) next.resync_pending = left;
    else delete next.resync_pending;
    await this.save(next);
    this.deps.logger.warn({ vmId, source: record.source_host, shadow: hostId, reason }, 'memory shadow declared invalid; full copy requested');
  }

  /** Restarts the source's rounds after a flush (a switchover rolled back). */
  resume(vmId: string): Promise<void> {
    return this.locks.run(vmId, async () => this.deps.agents.resume(this.require(vmId).source_host, vmId));
  }

  /** Records with the source agent's live state (errors reported per VM, never thrown). */
  async list(vmId?: string): Promise<MemoryShadowView[]> {
    const records = vmId ? [this.require(vmId)] : this.listRecords();
    return Promise.all(
      records.map(async (record) => {
        try {
          const status = await this.deps.agents.status(record.source_host, record.vm_id);
          return { record, status, statusError: status ? '' : `not replicating on ${record.source_host}` };
        } catch (err) {
          return { record, statusError: `${record.source_host}: ${errorMessage(err)}` };
        }
      }),
    );
  }

  /**
   * Why `hostId`'s memory shadow of `vmId` cannot take a switchover from `sourceHost` now (not
   * shadowed there, source unreachable, link not streaming, nothing acknowledged, lag above the
   * bound), or undefined when it can.
   */
  async notReadyReason(vmId: string, sourceHost: string, hostId: string, maxLagBytes = DEFAULT_READY_MAX_LAG_BYTES): Promise<string | undefined> {
    const record = this.records.get(vmId);
    if (!record) return `memory of ${vmId} is not replicated`;
    if (record.source_host !== sourceHost) return `memory of ${vmId} replicates from ${record.source_host}, not ${sourceHost}`;
    if (!record.shadow_hosts.includes(hostId)) return `${hostId} holds no memory shadow of ${vmId}`;
    if (record.resync_pending?.includes(hostId)) return `memory shadow on ${hostId} was declared invalid and ${sourceHost} has not yet accepted its re-sync`;
    const [view] = await this.list(vmId);
    if (!view.status) return `source ${sourceHost}: ${view.statusError}`;
    const link = view.status.shadows.find((l) => l.host_id === hostId);
    if (!link) return `source ${sourceHost} does not replicate ${vmId} to ${hostId}`;
    if (link.state !== 'streaming') return `memory shadow on ${hostId} is ${link.state}${link.last_error ? `: ${link.last_error}` : ''}`;
    if (Number(link.acked_epoch) === 0) return `memory shadow on ${hostId} has no complete copy yet`;
    const lag = Number(link.lag_bytes);
    if (lag > maxLagBytes) return `memory shadow on ${hostId} lags ${lag} bytes (bound ${maxLagBytes})`;
    return undefined;
  }

  /**
   * Restarts replication that a source agent no longer runs (it restarted; its new session sends
   * every shadow a full copy) and retries pending shadow re-syncs; returns the VMs acted on.
   */
  async resync(): Promise<string[]> {
    const restarted: string[] = [];
    for (const v of await this.list()) {
      const vmId = v.record.vm_id;
      if (!v.status && v.statusError.startsWith('not replicating')) {
        try {
          await this.start(vmId, v.record.source_host, v.record.shadow_hosts, { auto: v.record.auto === true });
          // A new source session has no acknowledged epochs: every shadow gets a full copy anyway.
          await this.locks.run(vmId, async () => {
            const r = this.records.get(vmId);
            if (r?.resync_pending) {
              const next = { ...r };
              delete next.resync_pending;
              await this.save(next);
            }
          });
          restarted.push(vmId);
        } catch (err) {
          this.deps.logger.warn({ vmId, err: errorMessage(err) }, 'restarting memory shadow failed');
        }
        continue;
      }
      if (!v.status || !v.record.resync_pending?.length) continue;
      for (const hostId of v.record.resync_pending) {
        try {
          await this.locks.run(vmId, () => this.sendResync(vmId, hostId, 'declared invalid earlier; re-sync retried'));
          if (!restarted.includes(vmId)) restarted.push(vmId);
        } catch (err) {
          this.deps.logger.warn({ vmId, shadow: hostId, err: errorMessage(err) }, 'memory shadow re-sync failed; retried later');
        }
      }
    }
    return restarted;
  }

  /** Audit entries never fail the operation they describe. */
  private async audit(kind: EventKind, hostId: string, vmId: string, message: string, attributes: Record<string, string>): Promise<void> {
    await this.deps.events?.append({ kind, host_id: hostId, vm_id: vmId, message, attributes }).catch((err) => this.deps.logger.warn({ vmId, err: errorMessage(err) }, 'audit event not recorded'));
  }

  private require(vmId: string): MemoryShadowRecord {
    const r = this.records.get(vmId);
    if (!r) throw new NotFoundError('memory shadow of vm', vmId);
    return r;
  }

  private async save(record: MemoryShadowRecord): Promise<void> {
    await this.deps.store.put(KEY_PREFIX + record.vm_id, record);
    this.records.set(record.vm_id, record);
  }
}


// The VM switchover (pure orchestration over ports): verify the destination's shadow is ready ->
// pause the source -> final memory flush -> device-state-only migration -> resume on the
// destination -> fenced IP switch (with leases) -> commit. Every phase is journaled in the store
// before it runs; a failure before the guest is committed on the destination rolls back to the
// source, and recover() resolves journals left by a coordinator that stopped mid-switchover.
import type { Logger } from 'pino';
import { FailedPreconditionError, errorMessage } from '../../shared/errors';
import type { KvStore } from '../../shared/kv-store';
import { KeyedMutex } from '../../shared/keyed-mutex';
import type { EventLog } from '../core/event-log';
import { type SwitchoverEvent, type SwitchoverStatus, formatSteps } from '../migrate/switchover-event';
import type { IpPort, MemoryPort, VmAgentPort } from './switchover-ports';
import { JOURNAL_VERSION, advance, decideRecovery, type SwitchoverJournal, type SwitchoverPhase } from './switchover-state';

export const JOURNAL_PREFIX = 'switchover/journal/';
export const RECORD_PREFIX = 'switchover/record/';
export const DEFAULT_FLUSH_TIMEOUT_MS = 10_000;
export const DEFAULT_DEVICE_STATE_TIMEOUT_MS = 10_000;

export interface VmSwitchoverDeps {
  store: KvStore;
  vms: VmAgentPort;
  memory: MemoryPort;
  ip: IpPort;
  events: Pick<EventLog, 'append'>;
  logger: Logger;
  locks?: KeyedMutex;
  flushTimeoutMs?: number;
  deviceStateTimeoutMs?: number;
  nowMs?: () => number;
  clockMs?: () => number;
}

/** Progress callback: a phase starts (ok undefined) or ends (ok, durationMs, and error when it failed). */
export type SwitchoverProgress = (p: { step: string; hostId: string; ok?: boolean; durationMs?: number; error?: string }) => void;

/**
 * The IP switch takes its own fencing token (above the journal's, which only orders the
 * switchover); once it succeeded, the journal and the recorded event carry the token the agents
 * hold for the address, so the token an operator sees is the one that fences.
 */
function withIpToken(j: SwitchoverJournal, ipToken: number | undefined): SwitchoverJournal {
  return ipToken === undefined ? j : { ...j, fencing_token: ipToken };
}

export class VmSwitchover {
  private readonly locks: KeyedMutex;
  private readonly nowMs: () => number;
  private readonly clockMs: () => number;
  private seq = 0;

  constructor(private readonly d: VmSwitchoverDeps) {
    this.locks = d.locks ?? new KeyedMutex();
    this.nowMs = d.nowMs ?? Date.now;
    this.clockMs = d.clockMs ?? (() => performance.now());
  }

  /** True when the VM runs as a QEMU VM the source agent drives (else the IP-only path applies). */
  async handles(vmId: string): Promise<boolean> {
    let source: string;
    try {
      source = this.d.ip.activeHost(vmId);
    } catch {
      return false;
    }
    const vm = await this.d.vms.query(source, vmId, 'local').catch(() => undefined);
    return vm !== undefined && vm.definitionJson !== '';
  }

  trigger(vmId: string, destination: string, progress?: SwitchoverProgress): Promise<SwitchoverEvent> {
    return this.locks.run(vmId, () => this.run(vmId, destination, progress));
  }

  /** Why `destination` cannot take the VM over now (the refusal trigger() would give), or undefined. */
  async notReadyReason(vmId: string, destination: string): Promise<string | undefined> {
    try {
      await this.verify(vmId, destination);
      return undefined;
    } catch (err) {
      if (err instanceof FailedPreconditionError) return err.message;
      throw err;
    }
  }

  /** Refuses (FailedPreconditionError, nothing touched) unless the destination can take over now. */
  private async verify(vmId: string, destination: string): Promise<{ source: string; incomingUri: string }> {
    const pending = await this.d.store.get<SwitchoverJournal>(JOURNAL_PREFIX + vmId);
    if (pending) throw new FailedPreconditionError(`vm '${vmId}' has an unresolved switchover ${pending.id} (${pending.phase}); it is resolved first`);
    const source = this.d.ip.activeHost(vmId);
    if (source === destination) throw new FailedPreconditionError(`vm '${vmId}' is already active on '${destination}'`);
    const refuse = (why: string) => new FailedPreconditionError(`cannot switch vm '${vmId}' to '${destination}': ${why}`);
    const ipReason = this.d.ip.notCurrentReason(vmId, destination);
    if (ipReason) throw refuse(ipReason);
    const src = await this.d.vms.query(source, vmId, 'local');
    if (!src) throw refuse(`source host '${source}' has no QEMU VM '${vmId}'`);
    if (src.status !== 'running') throw refuse(`the guest is ${src.status} on the source '${source}', not running`);
    const shadow = await this.d.vms.query(destination, vmId, 'shadow');
    if (!shadow) throw refuse('no shadow VM there (not prepared)');
    if (shadow.status !== 'inmigrate' || !shadow.incomingUri) throw refuse(`its shadow VM is ${shadow.status}, not waiting for the device state`);
    const memReason = await this.d.memory.notReadyReason(vmId, source, destination);
    if (memReason) throw refuse(memReason);
    return { source, incomingUri: shadow.incomingUri };
  }

  private async run(vmId: string, destination: string, progress?: SwitchoverProgress): Promise<SwitchoverEvent> {
    const { source, incomingUri } = await this.verify(vmId, destination);
    const startedAt = this.nowMs();
    let j: SwitchoverJournal = {
      version: JOURNAL_VERSION,
      id: `${startedAt.toString(36)}-${(this.seq++).toString(36)}-${vmId}`,
      vm_id: vmId,
      source_host: source,
      destination_host: destination,
      fencing_token: await this.d.ip.nextFencingToken(),
      started_at_unix_ms: startedAt,
      phase: 'pause-source',
      incoming_uri: incomingUri,
      destination_may_run: false,
      error: '',
      steps: [],
    };
    await this.save(j);
    this.d.logger.info({ vmId, source, destination, switchoverId: j.id, token: j.fencing_token }, 'switchover started');
    const t0 = this.clockMs();
    let ipToken: number | undefined;
    const forward: Array<[SwitchoverPhase, string, () => Promise<unknown>]> = [
      ['pause-source', source, () => this.d.vms.pause(source, vmId)],
      ['flush-memory', source, () => this.d.memory.flush(vmId, this.d.flushTimeoutMs ?? DEFAULT_FLUSH_TIMEOUT_MS)],
      ['migrate-device-state', source, () => this.d.vms.migrateDeviceState(source, vmId, incomingUri, this.d.deviceStateTimeoutMs ?? DEFAULT_DEVICE_STATE_TIMEOUT_MS)],
      ['resume-destination', destination, () => this.d.vms.resume(destination, vmId)],
      ['switch-ip', destination, async () => (ipToken = await this.switchIp(j))],
    ];
    for (const [phase, host, work] of forward) {
      j = advance(j, phase);
      await this.save(j);
      const r = await this.step(j, phase, host, work, progress);
      j = r.j;
      if (!r.ok) return this.rollBack(j, r.error, t0, progress);
    }
    return this.commit(withIpToken(j, ipToken), t0, progress);
  }

  /**
   * The IP moves with ipshadow's fenced switch; anything but SUCCEEDED leaves it on the source.
   * Resolves with the fencing token the agents were given (undefined when the IP had already moved).
   */
  private async switchIp(j: SwitchoverJournal): Promise<number | undefined> {
    if (this.d.ip.activeHost(j.vm_id) === j.destination_host) return undefined;
    const ev = await this.d.ip.switchIp(j.vm_id, j.destination_host);
    if (ev.status !== 'SUCCEEDED') throw new FailedPreconditionError(`IP switch ${ev.status}: ${ev.error}`);
    return ev.fencing_token;
  }

  private async step(
    j: SwitchoverJournal,
    name: string,
    hostId: string,
    work: () => Promise<unknown>,
    progress?: SwitchoverProgress,
  ): Promise<{ j: SwitchoverJournal; ok: boolean; error: string }> {
    progress?.({ step: name, hostId });
    const t = this.clockMs();
    let error = '';
    try {
      await work();
    } catch (err) {
      error = errorMessage(err);
    }
    const duration = this.clockMs() - t;
    progress?.({ step: name, hostId, ok: !error, durationMs: duration, ...(error ? { error } : {}) });
    const next = { ...j, steps: [...j.steps, { step: name, host_id: hostId, duration_ms: duration, ok: !error, error }] };
    if (error) this.d.logger.warn({ vmId: j.vm_id, switchoverId: j.id, step: name, hostId, err: error }, 'switchover step failed');
    return { j: next, ok: !error, error };
  }

  private async commit(j: SwitchoverJournal, t0: number, progress?: SwitchoverProgress): Promise<SwitchoverEvent> {
    j = advance(j, 'commit');
    await this.save(j);
    // The guest left the source: its replication has nothing more to send (the source stays
    // paused and intact for an operator's rollback until retired).
    const r = await this.step(j, 'stop-source-replication', j.source_host, () => this.d.memory.stop(j.vm_id), progress);
    return this.finish(r.j, 'SUCCEEDED', '', t0);
  }

  /** Back to the source: destination paused first when it may have run, then the source resumed. */
  private async rollBack(j: SwitchoverJournal, error: string, t0: number, progress?: SwitchoverProgress): Promise<SwitchoverEvent> {
    j = { ...advance(j, 'rollback'), error: j.error || error };
    await this.save(j);
    if (j.destination_may_run) {
      const r = await this.step(j, 'rollback-pause-destination', j.destination_host, () => this.d.vms.pause(j.destination_host, j.vm_id), progress);
      j = r.j;
      // The guest may be running there: resuming the source too could run it twice.
      if (!r.ok) return this.finish(j, 'FAILED', `${j.error}; destination not paused (${r.error}): source kept paused`, t0, true);
    }
    const resumed = await this.step(j, 'rollback-resume-source', j.source_host, () => this.d.vms.resume(j.source_host, j.vm_id), progress);
    j = resumed.j;
    if (!resumed.ok) return this.finish(j, 'FAILED', `${j.error}; source not resumed (${resumed.error})`, t0, true);
    if (j.destination_may_run) {
      // The guest may have run there, writing into the destination's shadow image: discard it, copy again.
      const why = `guest may have run on it during switchover ${j.id}`;
      j = (await this.step(j, 'rollback-resync-shadow', j.destination_host, () => this.d.memory.resyncShadow(j.vm_id, j.destination_host, why), progress)).j;
    }
    j = (await this.step(j, 'rollback-resume-replication', j.source_host, () => this.d.memory.resume(j.vm_id), progress)).j;
    // A shadow QEMU that loaded (part of) a device state cannot take another one: drop it, the
    // module's placement loop prepares a fresh one.
    j = (await this.step(j, 'rollback-reset-shadow', j.destination_host, () => this.d.vms.removeShadow(j.destination_host, j.vm_id), progress)).j;
    return this.finish(j, 'ROLLED_BACK', j.error, t0);
  }

  private async finish(j: SwitchoverJournal, status: SwitchoverStatus, error: string, t0: number, keepJournal = false): Promise<SwitchoverEvent> {
    if (keepJournal) await this.save(j);
    else await this.d.store.del(JOURNAL_PREFIX + j.vm_id);
    const event: SwitchoverEvent = {
      id: j.id,
      timestamp_unix_ms: j.started_at_unix_ms,
      vm_id: j.vm_id,
      source_host: j.source_host,
      destination_host: j.destination_host,
      status,
      fencing_token: j.fencing_token,
      steps: j.steps,
      total_ms: this.clockMs() - t0,
      error,
    };
    await this.d.store.put(`${RECORD_PREFIX}${String(event.timestamp_unix_ms).padStart(16, '0')}-${event.id}`, event);
    await this.d.events.append({
      kind: status === 'FAILED' ? 'EVENT_KIND_ALERT' : 'EVENT_KIND_SWITCHOVER',
      host_id: status === 'SUCCEEDED' ? j.destination_host : j.source_host,
      vm_id: j.vm_id,
      message: `VM switchover of ${j.vm_id} ${j.source_host} -> ${j.destination_host}: ${status} in ${event.total_ms.toFixed(2)} ms${error ? ` (${error})` : ''}`,
      attributes: { status, kind: 'vm', source_host: j.source_host, destination_host: j.destination_host, fencing_token: String(j.fencing_token), steps: formatSteps(j.steps), total_ms: event.total_ms.toFixed(3) },
    });
    this.d.logger.info({ vmId: j.vm_id, switchoverId: j.id, status, totalMs: event.total_ms, error }, 'switchover finished');
    return event;
  }

  private save(j: SwitchoverJournal): Promise<void> {
    return this.d.store.put(JOURNAL_PREFIX + j.vm_id, j);
  }

  /**
   * Resolves every unfinished journal (call at start and periodically): rolls back when the guest
   * never ran on the destination, rolls forward when it runs there, waits when it cannot tell.
   */
  async recover(): Promise<SwitchoverEvent[]> {
    const out: SwitchoverEvent[] = [];
    for (const { value } of await this.d.store.list<SwitchoverJournal>(JOURNAL_PREFIX)) {
      if (value.version !== JOURNAL_VERSION) continue;
      const ev = await this.locks.run(value.vm_id, () => this.resolve(value));
      if (ev) out.push(ev);
    }
    return out;
  }

  private async resolve(j: SwitchoverJournal): Promise<SwitchoverEvent | undefined> {
    let destinationRunning: boolean | undefined;
    if (j.destination_may_run && j.phase !== 'rollback' && j.phase !== 'commit') {
      try {
        destinationRunning = (await this.d.vms.query(j.destination_host, j.vm_id, 'local'))?.running ?? false;
      } catch {
        destinationRunning = undefined;
      }
    }
    const decision = decideRecovery(j, destinationRunning);
    this.d.logger.warn({ vmId: j.vm_id, switchoverId: j.id, phase: j.phase, decision }, 'resolving an unfinished switchover');
    const t0 = this.clockMs();
    if (decision.kind === 'wait') return undefined;
    if (decision.kind === 'roll-back') {
      return this.rollBack({ ...j, destination_may_run: j.destination_may_run || decision.pauseDestinationFirst }, j.error || `coordinator restarted during ${j.phase}`, t0);
    }
    if (decision.from === 'switch-ip') {
      j = advance(j, 'switch-ip');
      await this.save(j);
      let ipToken: number | undefined;
      const r = await this.step(j, 'switch-ip', j.destination_host, async () => (ipToken = await this.switchIp(j)));
      if (!r.ok) return this.rollBack(r.j, r.error, t0);
      j = withIpToken(r.j, ipToken);
    }
    return this.commit(j, t0);
  }

  async list(vmId: string | undefined, limit: number): Promise<SwitchoverEvent[]> {
    const all = await this.d.store.list<SwitchoverEvent>(RECORD_PREFIX, { reverse: true });
    return all.map((e) => e.value).filter((e) => !vmId || e.vm_id === vmId).slice(0, limit);
  }

  /** Unfinished switchovers (journal entries), for operators. */
  async pending(): Promise<SwitchoverJournal[]> {
    return (await this.d.store.list<SwitchoverJournal>(JOURNAL_PREFIX)).map((e) => e.value);
  }
}

// The VM switchover (pure orchestration over ports): verify the destination's shadow is ready ->
// pause the source -> final memory flush -> device-state-only migration -> resume on the
// destination together with the fenced IP switch (with leases) -> commit, and the source's memory
// replication stopped a little later (a durable cleanup entry). Every phase is journaled
// in the store before it runs (the flush and device-state entries are written without waiting:
// a restart in either resolves the same way as in pause-source, so the client's gap does not pay
// their fsyncs); a failure before the guest is committed on the destination rolls back to the
// source (moving the address back first when it may have moved), and recover() resolves journals
// left by a coordinator that stopped mid-switchover.
import type { Logger } from 'pino';
import { FailedPreconditionError, errorMessage } from '../../shared/errors';
import type { KvStore } from '../../shared/kv-store';
import { KeyedMutex } from '../../shared/keyed-mutex';
import { settle, unsettle, type Settled } from '../../shared/settle';
import type { EventLog } from '../core/event-log';
import { type SwitchoverEvent, type SwitchoverStatus, formatSteps } from '../migrate/switchover-event';
import type { PreparedIpSwitch } from '../migrate/ip-switchover';
import type { IpPort, MemoryPort, SwitchOutOutcome, VmAgentPort, VmInfo } from './switchover-ports';
import { JOURNAL_VERSION, advance, decideRecovery, type SwitchoverJournal, type SwitchoverPhase } from './switchover-state';

export const JOURNAL_PREFIX = 'switchover/journal/';
export const RECORD_PREFIX = 'switchover/record/';
/** A switchover's source replication still to stop (written with its record, deleted once stopped). */
export const CLEANUP_PREFIX = 'switchover/cleanup/';
/**
 * How long after a committed switchover the source's memory replication is stopped. Its teardown
 * (the agent unregisters write tracking over all guest RAM, closes the links; the coordinator
 * writes and audits) cost 30-60 ms of CPU in the lab with a 1 GiB guest, right in the first
 * 100 ms of the guest on the destination, when a fresh QEMU warms up and the client waits for its
 * first answer: where the two share CPUs (the lab's namespaces; a switchover within one host), the
 * answer came 10-25 ms later. Nothing is sent once the guest left, so waiting costs nothing.
 */
export const DEFAULT_SOURCE_CLEANUP_DELAY_MS = 500;
export const DEFAULT_FLUSH_TIMEOUT_MS = 10_000;
export const DEFAULT_DEVICE_STATE_TIMEOUT_MS = 10_000;
/** handles() is called right before trigger() (MigrationRoutes): its source query is reused within this. */
const SOURCE_QUERY_REUSE_MS = 1000;
/** The source's steps before the resume, in order. */
const SOURCE_STEPS = ['pause-source', 'flush-memory', 'migrate-device-state'] as const;
/** An armed resume waits this much longer than the source's flush and device state may take. */
const ARM_MARGIN_MS = 5_000;
/** After a rollback paused the destination, how long its armed resume may take to say whether the guest ran there. */
const ARM_SETTLE_MS = 3_000;
/** Errors of an armed resume that say nothing about whether the guest ran (the call's fate is unknown). */
const TRANSPORT_REASONS = new Set(['UNAVAILABLE', 'DEADLINE_EXCEEDED', 'CANCELLED', 'INTERNAL', 'UNKNOWN']);

/**
 * The journal of a switchover that failed before any device state left the source: the destination
 * cannot have loaded it, so it cannot run the guest (an armed resume there waits in vain and is
 * called off when its shadow is reset); the address may have moved only when its switch was sent
 * with the switch-out (it then left once the guest paused, and the rollback brings it back).
 */
function nothingOnDestination(j: SwitchoverJournal, ipInFlight: boolean): SwitchoverJournal {
  return { ...j, destination_may_run: false, ip_may_move: ipInFlight };
}

/** What a rollback of a running switchover knows beyond its journal. */
interface RollbackContext {
  journal?: JournalWriter;
  /** Whether the guest ran on the destination (asked once it is paused there). */
  ran?: () => Promise<boolean | undefined>;
  /** The address switch sent with the switch-out, if any: awaited before the address is checked. */
  ipInFlight?: Promise<unknown>;
}

function refusal(vmId: string, destination: string, why: string): FailedPreconditionError {
  return new FailedPreconditionError(`cannot switch vm '${vmId}' to '${destination}': ${why}`);
}

function reasonOf(err: unknown): string | undefined {
  return (err as { reason?: string } | undefined)?.reason;
}

/**
 * Whether the guest ran on the destination, from its armed resume's outcome (waited for up to
 * `ARM_SETTLE_MS` once the destination was paused): undefined when that cannot be told.
 */
async function armedRan(arm: Promise<Settled<unknown>>): Promise<boolean | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([arm, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ARM_SETTLE_MS)))]);
  clearTimeout(timer);
  if (!outcome) return undefined;
  if (outcome.ok) return true;
  return TRANSPORT_REASONS.has(reasonOf(outcome.err) ?? 'UNKNOWN') ? undefined : false;
}

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
  /** DEFAULT_SOURCE_CLEANUP_DELAY_MS unless set. */
  sourceCleanupDelayMs?: number;
  nowMs?: () => number;
  clockMs?: () => number;
}

/** The source replication a committed switchover leaves to stop. */
interface SourceCleanup {
  vm_id: string;
  source_host: string;
  switchover_id: string;
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

/** One step's outcome, as recorded in the journal and the event. */
type StepRecord = SwitchoverJournal['steps'][number];

/**
 * The journal writes of one run, in order. `later` does not wait for the write (used only where a
 * restart would resolve the same way without it); the next waited write waits for it first and
 * fails with its error.
 */
class JournalWriter {
  private pending: Promise<void> = Promise.resolve();

  constructor(private readonly store: KvStore) {}

  now(j: SwitchoverJournal): Promise<void> {
    const prior = this.pending;
    this.pending = Promise.resolve();
    return prior.then(() => this.store.put(JOURNAL_PREFIX + j.vm_id, j));
  }

  later(j: SwitchoverJournal): void {
    const write = this.pending.then(() => this.store.put(JOURNAL_PREFIX + j.vm_id, j));
    write.catch(() => undefined); // surfaced by the next now()
    this.pending = write;
  }
}

/**
 * The agent's own duration in a step's result (pause and resume resolve with it, the device state
 * and the flush carry durationMs / flushMs), so a step's time splits into the agent's work and the
 * RPC around it.
 */
function agentMsOf(result: unknown): number | undefined {
  if (typeof result === 'number') return result;
  if (result && typeof result === 'object') {
    const r = result as { durationMs?: unknown; flushMs?: unknown };
    if (typeof r.durationMs === 'number') return r.durationMs;
    if (typeof r.flushMs === 'number') return r.flushMs;
  }
  return undefined;
}

/** Where one run's time went, logged with its outcome: phases before the first step, and each step's coordinator and agent time. */
interface RunTimings {
  phases: Record<string, number>;
  steps: Array<{ step: string; ms: number; agentMs?: number }>;
}

export class VmSwitchover {
  private readonly locks: KeyedMutex;
  private readonly nowMs: () => number;
  private readonly clockMs: () => number;
  private seq = 0;
  private readonly timings = new Map<string, RunTimings>();
  /** handles()'s answer about the source, reused by the verify that follows it at once (one agent call less). */
  /** Final epochs flushed through switchOut (the memory module's flush audited them before), recorded with the outcome. */
  private readonly flushedEpochs = new Map<string, number>();
  /** The source's pause and the destination's run, each on its agent's clock (guest_paused_ms). */
  private readonly guestInstants = new Map<string, { pausedAt?: number; runningAt?: number }>();
  private lastSourceQuery?: { vmId: string; host: string; at: number; ms: number; vm: VmInfo };
  private readonly cleanupTimers = new Map<string, NodeJS.Timeout>();
  private closed = false;

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
    const t = this.clockMs();
    const vm = await this.d.vms.query(source, vmId, 'local').catch(() => undefined);
    if (vm) this.lastSourceQuery = { vmId, host: source, at: this.clockMs(), ms: this.clockMs() - t, vm };
    return vm !== undefined && vm.definitionJson !== '';
  }

  /** The source's VM, from handles() when it asked within SOURCE_QUERY_REUSE_MS, else asked now. */
  private querySource(source: string, vmId: string): Promise<VmInfo | undefined> {
    const last = this.lastSourceQuery;
    this.lastSourceQuery = undefined;
    if (last && last.vmId === vmId && last.host === source && this.clockMs() - last.at <= SOURCE_QUERY_REUSE_MS) return Promise.resolve(last.vm);
    return this.d.vms.query(source, vmId, 'local');
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
    const source = await this.verifyLocal(vmId, destination);
    return { source, incomingUri: await this.verifyAgents(vmId, source, destination) };
  }

  /** The coordinator's own checks (its store and IP shadows): the VM's source host, or a refusal. */
  private async verifyLocal(vmId: string, destination: string): Promise<string> {
    const pending = await this.d.store.get<SwitchoverJournal>(JOURNAL_PREFIX + vmId);
    if (pending) throw new FailedPreconditionError(`vm '${vmId}' has an unresolved switchover ${pending.id} (${pending.phase}); it is resolved first`);
    const source = this.d.ip.activeHost(vmId);
    if (source === destination) throw new FailedPreconditionError(`vm '${vmId}' is already active on '${destination}'`);
    const ipReason = this.d.ip.notCurrentReason(vmId, destination);
    if (ipReason) throw refusal(vmId, destination, ipReason);
    return source;
  }

  /** The agents' side: the source runs the guest, the shadow waits for it, its memory is current. Resolves the incoming URI. */
  private async verifyAgents(vmId: string, source: string, destination: string): Promise<string> {
    const refuse = (why: string) => refusal(vmId, destination, why);
    // The three agents' answers are independent: asked at once (read in the same order as before,
    // so the refusal given is the same).
    const [src, shadow, memReason] = await Promise.all([
      this.querySource(source, vmId),
      this.d.vms.query(destination, vmId, 'shadow'),
      this.d.memory.notReadyReason(vmId, source, destination),
    ]);
    if (!src) throw refuse(`source host '${source}' has no QEMU VM '${vmId}'`);
    if (src.status !== 'running') throw refuse(`the guest is ${src.status} on the source '${source}', not running`);
    if (!shadow) throw refuse('no shadow VM there (not prepared)');
    if (shadow.status !== 'inmigrate' || !shadow.incomingUri) throw refuse(`its shadow VM is ${shadow.status}, not waiting for the device state`);
    if (memReason) throw refuse(memReason);
    return shadow.incomingUri;
  }

  /** The IP switch prepared ahead, or undefined (it then prepares when it runs). Never rejects. */
  private async prepareIpAhead(vmId: string, destination: string): Promise<{ handle: PreparedIpSwitch; ms: number } | undefined> {
    if (!this.d.ip.prepareSwitch) return undefined;
    const t = this.clockMs();
    try {
      const handle = await this.d.ip.prepareSwitch(vmId, destination, { partOfVmSwitchover: true });
      return { handle, ms: Math.round((this.clockMs() - t) * 10) / 10 };
    } catch (err) {
      this.d.logger.warn({ vmId, destination, err: errorMessage(err) }, 'IP switch not prepared ahead: it prepares when it runs');
      return undefined;
    }
  }

  private async run(vmId: string, destination: string, progress?: SwitchoverProgress): Promise<SwitchoverEvent> {
    const tVerify = this.clockMs();
    const handlesMs = this.lastSourceQuery?.vmId === vmId ? this.lastSourceQuery.ms : undefined;
    const source = await this.verifyLocal(vmId, destination);
    // Asked before the IP switch's preparation takes its own: the journal's token orders the
    // switchover below the address's (tokens are handed out in the order asked).
    const token = settle(this.d.ip.nextFencingToken());
    // The IP switch's preparation (token admitted by both agents, channel between them up) runs
    // beside the agents' answers and the journal's write: not after them (it took 100-270 ms in
    // the lab, as long as they did), nor inside the pause. A refusal withdraws it without a trace.
    const ipAhead = this.prepareIpAhead(vmId, destination);
    let j: SwitchoverJournal;
    const journal = new JournalWriter(this.d.store);
    let tVerified: number;
    let tToken: number;
    try {
      const incomingUri = await this.verifyAgents(vmId, source, destination);
      tVerified = this.clockMs();
      const startedAt = this.nowMs();
      // With an armed resume the destination runs the guest as soon as the device state has loaded,
      // and the address follows at once: both are possible from the first entry on (a restart then
      // asks the destination where the guest runs; a rollback pauses it first and moves the address
      // back if it moved).
      const armed = this.d.vms.resumeWhenLoaded !== undefined;
      j = {
        version: JOURNAL_VERSION,
        id: `${startedAt.toString(36)}-${(this.seq++).toString(36)}-${vmId}`,
        vm_id: vmId,
        source_host: source,
        destination_host: destination,
        fencing_token: await unsettle(token),
        started_at_unix_ms: startedAt,
        phase: 'pause-source',
        incoming_uri: incomingUri,
        destination_may_run: armed,
        ip_may_move: armed,
        error: '',
        steps: [],
      };
      tToken = this.clockMs();
      await journal.now(j);
    } catch (err) {
      await token;
      await (await ipAhead)?.handle.withdraw(`the switchover did not start: ${errorMessage(err)}`).catch(() => undefined);
      throw err;
    }
    const tJournaled = this.clockMs();
    this.d.logger.info({ vmId, source, destination, switchoverId: j.id, token: j.fencing_token }, 'switchover started');
    const ahead = await ipAhead;
    const preparedIp = ahead?.handle;
    this.timings.set(j.id, {
      phases: { ...(handlesMs !== undefined ? { handlesQuery: handlesMs } : {}), verify: tVerified - tVerify, token: tToken - tVerified, journal: tJournaled - tToken, ...(ahead ? { prepareIp: ahead.ms, prepareIpAfterJournal: Math.round((this.clockMs() - tJournaled) * 10) / 10 } : {}) },
      steps: [],
    });
    try {
      return await this.runPrepared(j, source, destination, j.incoming_uri, journal, preparedIp, progress);
    } finally {
      // Settled already on every path that reached the IP switch; otherwise nothing moved.
      await preparedIp?.abandon('the VM switchover did not reach its IP switch').catch(() => undefined);
    }
  }

  private async runPrepared(
    j: SwitchoverJournal,
    source: string,
    destination: string,
    incomingUri: string,
    journal: JournalWriter,
    preparedIp: PreparedIpSwitch | undefined,
    progress?: SwitchoverProgress,
  ): Promise<SwitchoverEvent> {
    const vmId = j.vm_id;
    const t0 = this.clockMs();
    const flushTimeoutMs = this.d.flushTimeoutMs ?? DEFAULT_FLUSH_TIMEOUT_MS;
    const deviceStateTimeoutMs = this.d.deviceStateTimeoutMs ?? DEFAULT_DEVICE_STATE_TIMEOUT_MS;
    // Armed before the source pauses (the request travels while the source works): the guest
    // then runs on the destination the moment its device state has loaded, not one answer, one
    // journal write and one resume call later.
    const arm = j.destination_may_run && this.d.vms.resumeWhenLoaded ? settle(this.d.vms.resumeWhenLoaded(destination, vmId, flushTimeoutMs + deviceStateTimeoutMs + ARM_MARGIN_MS)) : undefined;
    const ran = arm ? () => armedRan(arm) : undefined;
    // The address switch goes out with the switch-out too: the source removes the address as soon
    // as its switch-out is over and hands it to the destination itself, so it gets there about when
    // the guest runs there (the guest is paused: nothing is lost by moving it then).
    // The source removes it once its switch-out is over: as long as the arm may wait.
    const ipEarly = arm && preparedIp ? settle(this.switchIp(j, preparedIp, flushTimeoutMs + deviceStateTimeoutMs + ARM_MARGIN_MS)) : undefined;
    const rollback = { journal, ran, ipInFlight: ipEarly };
    // Until the resume, a restart rolls back the same way whichever of these phases it hit: only
    // the first entry is waited for.
    const beforeResume: Array<[SwitchoverPhase, string, () => Promise<unknown>, 'now' | 'later']> = [
      ['pause-source', source, () => this.d.vms.pause(source, vmId), 'now'],
      ['flush-memory', source, () => this.d.memory.flush(vmId, flushTimeoutMs), 'later'],
      ['migrate-device-state', source, () => this.d.vms.migrateDeviceState(source, vmId, incomingUri, deviceStateTimeoutMs), 'later'],
    ];
    const chained = this.d.vms.switchOut ? await this.switchOutChained(j, source, incomingUri, progress) : undefined;
    if (chained) {
      j = chained.j;
      if (!chained.ok) return this.rollBack(chained.deviceStateUnsent ? nothingOnDestination(j, !!ipEarly) : j, chained.error, t0, progress, rollback);
    } else {
      for (const [phase, host, work, write] of beforeResume) {
        if (phase !== j.phase) {
          j = advance(j, phase);
          if (write === 'now') await journal.now(j);
          else journal.later(j);
        }
        const r = await this.runStep(j, phase, host, work, progress);
        j = { ...j, steps: [...j.steps, r] };
        if (!r.ok) return this.rollBack(phase === 'migrate-device-state' ? j : nothingOnDestination(j, !!ipEarly), r.error, t0, progress, rollback);
      }
    }
    // The guest runs on the destination and its address moves there at the same time: the source
    // guest is paused, so nothing is lost by moving the address before the destination answers,
    // and the IP switch's own fencing keeps the address active on one host at a time.
    j = advance(j, 'resume-destination');
    // Armed: the first entry already allowed the guest on the destination and the address to
    // move, so a restart resolves this entry as that one (it is not waited for).
    if (arm) journal.later(j);
    else await journal.now(j);
    const resume = async (): Promise<unknown> => {
      if (!arm) return this.d.vms.resume(destination, vmId);
      const outcome = await arm;
      if (outcome.ok) {
        const runningAt = outcome.value.runningAtUnixMs;
        if (runningAt) this.guestInstants.set(j.id, { ...this.guestInstants.get(j.id), runningAt });
        return outcome.value;
      }
      // An agent without the armed resume: the guest waits for this explicit one.
      if (reasonOf(outcome.err) === 'UNIMPLEMENTED') return this.d.vms.resume(destination, vmId);
      throw outcome.err;
    };
    let ipToken: number | undefined;
    const [resumed, ip] = await Promise.all([
      this.runStep(j, 'resume-destination', destination, resume, progress),
      this.runStep(j, 'switch-ip', destination, async () => {
        if (!ipEarly) {
          ipToken = await this.switchIp(j, preparedIp);
          return;
        }
        const outcome = await ipEarly;
        if (!outcome.ok) throw outcome.err;
        ipToken = outcome.value;
      }, progress),
    ]);
    j = { ...j, steps: [...j.steps, resumed, ip] };
    if (!resumed.ok || !ip.ok) return this.rollBack(j, resumed.ok ? ip.error : resumed.error, t0, progress, rollback);
    return this.commit(withIpToken(j, ipToken), t0, journal);
  }

  /**
   * The source's pause, final flush and device state in one agent call (VmAgentPort.switchOut):
   * the guest's pause no longer pays two coordinator round trips between them. Recorded as the
   * three steps with the agent's times; the call's own round trip (its total minus them) is
   * counted in pause-source, so the steps still add up to the coordinator's wall time. The phases
   * move on in memory only: their journal entries were written without waiting before, because a
   * restart in any of them resolves as in pause-source (roll back); the resume's entry, written and
   * waited for next, supersedes them. Resolves undefined when the agent lacks the call (nothing
   * paused: the caller takes the steps one by one).
   */
  private async switchOutChained(
    j: SwitchoverJournal,
    source: string,
    incomingUri: string,
    progress?: SwitchoverProgress,
  ): Promise<{ j: SwitchoverJournal; ok: boolean; error: string; deviceStateUnsent: boolean } | undefined> {
    progress?.({ step: 'pause-source', hostId: source });
    const t = this.clockMs();
    let out: SwitchOutOutcome;
    let unknown = false;
    try {
      out = await this.d.vms.switchOut!(source, j.vm_id, incomingUri, {
        flushTimeoutMs: this.d.flushTimeoutMs ?? DEFAULT_FLUSH_TIMEOUT_MS,
        deviceStateTimeoutMs: this.d.deviceStateTimeoutMs ?? DEFAULT_DEVICE_STATE_TIMEOUT_MS,
        destinationHost: j.destination_host,
      });
    } catch (err) {
      if (reasonOf(err) === 'UNIMPLEMENTED') return undefined;
      // How far the agent got is unknown: a failed pause (the rollback resumes the source either way).
      unknown = true;
      out = { pauseMs: 0, flushMs: 0, finalEpoch: 0, migrateMs: 0, qemuDowntimeMs: 0, ramTransferredBytes: 0, failedStep: 'pause-source', failedMs: this.clockMs() - t, error: errorMessage(err) };
    }
    // The drain before the pause ran with the guest running: not a step of its pause.
    const total = this.clockMs() - t - (out.quiesceMs ?? 0);
    const failedStep = out.failedStep ?? (out.error ? 'pause-source' : undefined);
    const agentMs = { 'pause-source': out.pauseMs, 'flush-memory': out.flushMs, 'migrate-device-state': out.migrateMs };
    const ran: StepRecord[] = [];
    for (const step of SOURCE_STEPS) {
      const failed = step === failedStep;
      ran.push({ step, host_id: source, duration_ms: failed ? out.failedMs : agentMs[step], ok: !failed, error: failed ? out.error || 'failed' : '' });
      if (failed) break;
    }
    ran[0] = { ...ran[0], duration_ms: ran[0].duration_ms + Math.max(0, total - ran.reduce((sum, r) => sum + r.duration_ms, 0)) };
    const timings = this.timings.get(j.id);
    for (const r of ran) {
      if (r.step !== j.phase) j = advance(j, r.step as SwitchoverPhase);
      if (r.step !== 'pause-source') progress?.({ step: r.step, hostId: source });
      progress?.({ step: r.step, hostId: source, ok: r.ok, durationMs: r.duration_ms, ...(r.ok ? {} : { error: r.error }) });
      if (!r.ok) this.d.logger.warn({ vmId: j.vm_id, switchoverId: j.id, step: r.step, hostId: source, err: r.error }, 'switchover step failed');
      timings?.steps.push({ step: r.step, ms: Math.round(r.duration_ms * 10) / 10, agentMs: Math.round(agentMs[r.step as keyof typeof agentMs] * 10) / 10 });
    }
    if (timings) {
      timings.phases.switchOutCall = Math.round(total * 10) / 10;
      if (out.quiesceMs) timings.phases.quiesce = Math.round(out.quiesceMs * 10) / 10;
    }
    if (!failedStep) this.flushedEpochs.set(j.id, out.finalEpoch);
    if (out.pausedAtUnixMs) this.guestInstants.set(j.id, { ...this.guestInstants.get(j.id), pausedAt: out.pausedAtUnixMs });
    const last = ran[ran.length - 1];
    const deviceStateUnsent = !unknown && (failedStep === 'pause-source' || failedStep === 'flush-memory');
    return { j: { ...j, steps: [...j.steps, ...ran] }, ok: last.ok, error: last.ok ? '' : last.error, deviceStateUnsent };
  }

  /**
   * The IP moves with ipshadow's fenced switch; anything but SUCCEEDED leaves it on the source.
   * Resolves with the fencing token the agents were given (undefined when the IP had already moved).
   */
  private async switchIp(j: SwitchoverJournal, prepared?: PreparedIpSwitch, afterSourceGuestPausedMs?: number): Promise<number | undefined> {
    if (this.d.ip.activeHost(j.vm_id) === j.destination_host) {
      await prepared?.abandon('the address is already on the destination');
      return undefined;
    }
    const ev = prepared ? await prepared.complete(afterSourceGuestPausedMs ? { afterSourceGuestPausedMs } : undefined) : await this.d.ip.switchIp(j.vm_id, j.destination_host, { partOfVmSwitchover: true });
    if (ev.status !== 'SUCCEEDED') throw new FailedPreconditionError(`IP switch ${ev.status}: ${ev.error}`);
    return ev.fencing_token;
  }

  /**
   * Rollback: the guest must not run on the destination. A pause that fails is good enough when
   * the destination, asked again, runs no copy (e.g. its shadow was already removed by an earlier
   * attempt of this rollback); an unreachable destination is not.
   */
  private async pauseDestination(j: SwitchoverJournal): Promise<void> {
    try {
      await this.d.vms.pause(j.destination_host, j.vm_id);
    } catch (err) {
      const vm = await this.d.vms.query(j.destination_host, j.vm_id).catch(() => {
        throw err;
      });
      if (vm && vm.running !== false) throw err;
    }
  }

  /** Rollback: the address back on the source (a fresh switch, so a fresh token) when it moved. */
  private async switchIpBack(j: SwitchoverJournal): Promise<void> {
    if (this.d.ip.activeHost(j.vm_id) !== j.destination_host) return;
    const ev = await this.d.ip.switchIp(j.vm_id, j.source_host, { returning: true, partOfVmSwitchover: true });
    if (ev.status !== 'SUCCEEDED') throw new FailedPreconditionError(`IP switch back ${ev.status}: ${ev.error}`);
  }

  /** Runs one step and reports it; never throws (the outcome is in the record). */
  private async runStep(j: SwitchoverJournal, name: string, hostId: string, work: () => Promise<unknown>, progress?: SwitchoverProgress): Promise<StepRecord> {
    progress?.({ step: name, hostId });
    const t = this.clockMs();
    let error = '';
    let result: unknown;
    try {
      result = await work();
    } catch (err) {
      error = errorMessage(err);
    }
    const duration = this.clockMs() - t;
    this.timings.get(j.id)?.steps.push({ step: name, ms: Math.round(duration * 10) / 10, agentMs: agentMsOf(result) === undefined ? undefined : Math.round(agentMsOf(result)! * 10) / 10 });
    progress?.({ step: name, hostId, ok: !error, durationMs: duration, ...(error ? { error } : {}) });
    if (error) this.d.logger.warn({ vmId: j.vm_id, switchoverId: j.id, step: name, hostId, err: error }, 'switchover step failed');
    return { step: name, host_id: hostId, duration_ms: duration, ok: !error, error };
  }

  private async step(
    j: SwitchoverJournal,
    name: string,
    hostId: string,
    work: () => Promise<unknown>,
    progress?: SwitchoverProgress,
  ): Promise<{ j: SwitchoverJournal; ok: boolean; error: string }> {
    const r = await this.runStep(j, name, hostId, work, progress);
    return { j: { ...j, steps: [...j.steps, r] }, ok: r.ok, error: r.error };
  }

  private async commit(j: SwitchoverJournal, t0: number, journal = new JournalWriter(this.d.store)): Promise<SwitchoverEvent> {
    j = advance(j, 'commit');
    await journal.now(j);
    // The guest left the source: its replication has nothing more to send (the source stays
    // paused and intact for an operator's rollback until retired). Stopped after the delay, from
    // the cleanup entry written with the record (a restarted coordinator's recover() does it).
    const cleanup: SourceCleanup = { vm_id: j.vm_id, source_host: j.source_host, switchover_id: j.id };
    const event = await this.finish(j, 'SUCCEEDED', '', t0, false, cleanup);
    this.scheduleCleanup(cleanup, this.d.sourceCleanupDelayMs ?? DEFAULT_SOURCE_CLEANUP_DELAY_MS);
    return event;
  }

  private scheduleCleanup(c: SourceCleanup, delayMs: number): void {
    if (this.closed) return;
    // A newer switchover of the VM replaces an older one's pending cleanup (its entry did already).
    clearTimeout(this.cleanupTimers.get(c.vm_id));
    const timer = setTimeout(() => {
      this.cleanupTimers.delete(c.vm_id);
      this.cleanUp(c).catch((err) => this.d.logger.warn({ vmId: c.vm_id, switchoverId: c.switchover_id, err: errorMessage(err) }, 'source cleanup after the switchover failed; retried by the next recovery'));
    }, delayMs);
    timer.unref();
    this.cleanupTimers.set(c.vm_id, timer);
  }

  /** Stops the source replication `c` names, unless a later switchover's entry replaced it; kept for the next recover() when it fails. */
  private cleanUp(c: SourceCleanup): Promise<void> {
    return this.locks.run(c.vm_id, async () => {
      const current = await this.d.store.get<SourceCleanup>(CLEANUP_PREFIX + c.vm_id);
      if (!current || current.switchover_id !== c.switchover_id) return;
      const t = this.clockMs();
      try {
        await this.d.memory.stop(c.vm_id, c.source_host);
      } catch (err) {
        this.d.logger.warn({ vmId: c.vm_id, switchoverId: c.switchover_id, source: c.source_host, err: errorMessage(err) }, 'source memory replication not stopped after the switchover; retried by the next recovery');
        return;
      }
      await this.d.store.del(CLEANUP_PREFIX + c.vm_id);
      this.d.logger.info({ vmId: c.vm_id, switchoverId: c.switchover_id, source: c.source_host, ms: Math.round((this.clockMs() - t) * 10) / 10 }, 'source memory replication stopped after the switchover');
    });
  }

  /** Cancels the delayed cleanups (their entries stay for the next start's recover()). */
  close(): void {
    this.closed = true;
    for (const t of this.cleanupTimers.values()) clearTimeout(t);
    this.cleanupTimers.clear();
  }

  /**
   * Back to the source: destination paused first when it may have run, the address moved back
   * when it may have moved, then the source resumed. An address that cannot be moved back does not
   * keep the guest down (no host has it twice either way): the source resumes, the outcome is
   * FAILED and the journal stays, so recover() retries the rollback (each step is idempotent).
   * `ctx.ran`, once the destination is paused: whether the guest ran there (its shadow image is
   * copied again unless it surely did not); `ctx.ipInFlight`: an address switch still running.
   */
  private async rollBack(
    j: SwitchoverJournal,
    error: string,
    t0: number,
    progress?: SwitchoverProgress,
    ctx: RollbackContext = {},
  ): Promise<SwitchoverEvent> {
    const { journal = new JournalWriter(this.d.store), ran, ipInFlight } = ctx;
    j = { ...advance(j, 'rollback'), error: j.error || error };
    await journal.now(j);
    if (j.destination_may_run) {
      const r = await this.step(j, 'rollback-pause-destination', j.destination_host, () => this.pauseDestination(j), progress);
      j = r.j;
      // The guest may be running there: resuming the source too could run it twice.
      if (!r.ok) return this.finish(j, 'FAILED', `${j.error}; destination not paused (${r.error}): source kept paused`, t0, true);
    }
    let ipBackError = '';
    if (j.ip_may_move) {
      // A switch sent with the switch-out settles first (moved after the pause, or refused).
      await ipInFlight;
      const r = await this.step(j, 'rollback-switch-ip', j.source_host, () => this.switchIpBack(j), progress);
      j = r.j;
      ipBackError = r.error;
    }
    const resumed = await this.step(j, 'rollback-resume-source', j.source_host, () => this.d.vms.resume(j.source_host, j.vm_id), progress);
    j = resumed.j;
    if (!resumed.ok) return this.finish(j, 'FAILED', `${j.error}; source not resumed (${resumed.error})`, t0, true);
    if (j.destination_may_run && (ran ? await ran() : undefined) !== false) {
      // The guest may have run there, writing into the destination's shadow image: discard it, copy again.
      const why = `guest may have run on it during switchover ${j.id}`;
      j = (await this.step(j, 'rollback-resync-shadow', j.destination_host, () => this.d.memory.resyncShadow(j.vm_id, j.destination_host, why), progress)).j;
    }
    j = (await this.step(j, 'rollback-resume-replication', j.source_host, () => this.d.memory.resume(j.vm_id), progress)).j;
    // A shadow QEMU that loaded (part of) a device state cannot take another one: drop it, the
    // module's placement loop prepares a fresh one.
    j = (await this.step(j, 'rollback-reset-shadow', j.destination_host, () => this.d.vms.removeShadow(j.destination_host, j.vm_id), progress)).j;
    if (ipBackError) return this.finish(j, 'FAILED', `${j.error}; address not moved back to the source (${ipBackError}): guest resumed there, rollback retried`, t0, true);
    return this.finish(j, 'ROLLED_BACK', j.error, t0);
  }

  private async finish(j: SwitchoverJournal, status: SwitchoverStatus, error: string, t0: number, keepJournal = false, cleanup?: SourceCleanup): Promise<SwitchoverEvent> {
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
    const instants = this.guestInstants.get(j.id);
    this.guestInstants.delete(j.id);
    if (instants?.pausedAt && instants.runningAt && instants.runningAt >= instants.pausedAt) event.guest_paused_ms = instants.runningAt - instants.pausedAt;
    // Journal resolved (or kept), the record and the cleanup left to do written in one durable write.
    await this.d.store.batch([
      keepJournal ? { type: 'put', key: JOURNAL_PREFIX + j.vm_id, value: j } : { type: 'del', key: JOURNAL_PREFIX + j.vm_id },
      { type: 'put', key: `${RECORD_PREFIX}${String(event.timestamp_unix_ms).padStart(16, '0')}-${event.id}`, value: event },
      ...(cleanup ? [{ type: 'put' as const, key: CLEANUP_PREFIX + j.vm_id, value: cleanup }] : []),
    ]);
    const flushedEpoch = this.flushedEpochs.get(j.id);
    this.flushedEpochs.delete(j.id);
    if (flushedEpoch !== undefined) {
      await this.d.memory.flushed(j.vm_id, j.source_host, flushedEpoch).catch((err) =>
        this.d.logger.warn({ vmId: j.vm_id, switchoverId: j.id, err: errorMessage(err) }, 'final epoch not noted on the memory shadow'),
      );
      await this.d.events.append({
        kind: 'EVENT_KIND_MEMORY_SHADOW_FLUSHED',
        host_id: j.source_host,
        vm_id: j.vm_id,
        message: `memory of ${j.vm_id} flushed: epoch ${flushedEpoch} on ${j.destination_host} (switchover ${j.id})`,
        attributes: { final_epoch: String(flushedEpoch), shadows: j.destination_host },
      });
    }
    await this.d.events.append({
      kind: status === 'FAILED' ? 'EVENT_KIND_ALERT' : 'EVENT_KIND_SWITCHOVER',
      host_id: status === 'SUCCEEDED' ? j.destination_host : j.source_host,
      vm_id: j.vm_id,
      message: `VM switchover of ${j.vm_id} ${j.source_host} -> ${j.destination_host}: ${status} in ${event.total_ms.toFixed(2)} ms${error ? ` (${error})` : ''}`,
      attributes: { status, kind: 'vm', source_host: j.source_host, destination_host: j.destination_host, fencing_token: String(j.fencing_token), steps: formatSteps(j.steps), total_ms: event.total_ms.toFixed(3) },
    });
    const timings = this.timings.get(j.id);
    this.timings.delete(j.id);
    this.d.logger.info({ vmId: j.vm_id, switchoverId: j.id, status, totalMs: event.total_ms, error, timings }, 'switchover finished');
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
    for (const { value: c } of await this.d.store.list<SourceCleanup>(CLEANUP_PREFIX)) {
      if (!this.cleanupTimers.has(c.vm_id)) await this.cleanUp(c);
    }
    const out: SwitchoverEvent[] = [];
    for (const { value: listed } of await this.d.store.list<SwitchoverJournal>(JOURNAL_PREFIX)) {
      if (listed.version !== JOURNAL_VERSION) continue;
      const ev = await this.locks.run(listed.vm_id, async () => {
        // Read again under the VM's lock: the entry listed may belong to a switchover that was
        // running and has finished since (resolving that stale copy would resume a source whose
        // guest now runs on the destination: two running copies).
        const current = await this.d.store.get<SwitchoverJournal>(JOURNAL_PREFIX + listed.vm_id);
        if (!current || current.id !== listed.id || current.version !== JOURNAL_VERSION) return undefined;
        return this.resolve(current);
      });
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
      return this.rollBack({ ...j, destination_may_run: j.destination_may_run || decision.pauseDestinationFirst }, j.error || `coordinator restarted during ${j.phase}`, t0, undefined, {
        ran: () => this.ranOnDestinationPerAgent(j),
      });
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

  /**
   * After a recovering rollback paused the destination: whether the guest ran there, from its
   * agent, since the armed resume's answer died with the previous coordinator. The agent promotes
   * a shadow VM to its local VM under the VM's lock right after running it, and the pause queues
   * behind that lock: a VM still held as a shadow never ran (its image needs no new copy); a local
   * one did; anything else (no answer, neither role) cannot be told.
   */
  private async ranOnDestinationPerAgent(j: SwitchoverJournal): Promise<boolean | undefined> {
    try {
      if (await this.d.vms.query(j.destination_host, j.vm_id, 'shadow')) return false;
      return (await this.d.vms.query(j.destination_host, j.vm_id, 'local')) ? true : undefined;
    } catch {
      return undefined;
    }
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

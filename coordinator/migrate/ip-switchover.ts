// TriggerMigration for a VM's IP: verify the destination's shadow is current, have both agents
// admit a fresh fencing token (prepare), deactivate on the source, activate on the destination,
// move the lease record. A failed (de)activation rolls back so the address ends active on exactly
// one host; every run is journaled (with its token, one write) before its first step and recorded
// with step timings in the store and the audit log. Only the deactivate -> activate hand-over is
// outside any host: nothing in it waits for a disk write.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { HANDOVER_DATAGRAM_KEY_BYTES } from '../../shared/handover-datagram';
import { FailedPreconditionError, UmbraError, errorMessage } from '../../shared/errors';
import type { KvStore } from '../../shared/kv-store';
import { KeyedMutex } from '../../shared/keyed-mutex';
import type { EventLog } from '../core/event-log';
import type { LeaseBackend } from '../leases/lease-backend';
import type { VmIpRegistry } from '../shadow/vm-ip-registry';
import type { FencingCounter } from './fencing-counter';
import type { DeactivateOptions, HandoverOutcome, IpAgentPort, IpHandoffHosts } from './ip-agent-port';
import { PART_OF_VM_SWITCHOVER, type SwitchoverEvent, type SwitchoverStep, formatSteps } from './switchover-event';

const RECORD_PREFIX = 'ipshadow/switchover/';
export const JOURNAL_PREFIX = 'ipshadow/journal/';

export interface ShadowCheck {
  /** Why `hostId` cannot take over `vmId`, or undefined when its shadow is current. */
  notCurrentReason(vmId: string, hostId: string): string | undefined;
  /** The VM now runs on `hostId`. */
  promoted(vmId: string, hostId: string): Promise<void>;
  /** The shadows of `vmId`, or of every VM. */
  list(vmId?: string): Array<{ vm_id: string; host_id: string }>;
}

export interface IpSwitchoverDeps {
  store: KvStore;
  vms: VmIpRegistry;
  shadows: ShadowCheck;
  agents: IpAgentPort;
  leases: LeaseBackend;
  fencing: FencingCounter;
  events: Pick<EventLog, 'append'>;
  logger: Logger;
  /** Per-VM lock shared with the reconciliation sweep. */
  locks: KeyedMutex;
  nowMs?: () => number;
  clockMs?: () => number;
}

export interface JournalEntry {
  vm_id: string;
  source_host: string;
  destination_host: string;
  fencing_token: number;
  started_at_unix_ms: number;
}

function isUnimplemented(err: unknown): boolean {
  return err instanceof UmbraError && err.reason === 'UNIMPLEMENTED';
}

/** A switch whose token is journaled and admitted by the agents; the address has not moved. */
interface PreparedState {
  vmId: string;
  source: string;
  destination: string;
  config: ReturnType<VmIpRegistry['get']>['config'];
  token: number;
  journal: JournalEntry;
  steps: SwitchoverStep[];
  started: number;
  sourceError: unknown;
  destinationError: unknown;
  partOfVmSwitchover: boolean;
  /** The hosts (and datagram key) both agents were prepared with. */
  handoff: IpHandoffHosts;
}

/**
 * An IP switch prepared ahead (both agents admitted its token, the source dialed the destination),
 * holding the VM's IP lock until complete() or abandon(); so a VM switchover does that work before
 * the guest's pause instead of inside it.
 */
export interface PreparedIpSwitch {
  readonly fencingToken: number;
  /**
   * Moves the address (as trigger() would after its prepare). `afterSourceGuestPausedMs`: the
   * source removes it only once its guest of the VM is paused (waiting up to that long), so a VM
   * switchover can send the switch together with the source's switch-out.
   */
  complete(opts?: { afterSourceGuestPausedMs?: number }): Promise<SwitchoverEvent>;
  /** Nothing moves; the switch is recorded ROLLED_BACK with `why`. */
  abandon(why: string): Promise<SwitchoverEvent>;
  /**
   * Nothing moves and nothing is recorded: the switchover it was prepared for was refused before
   * it began (prepared beside its checks). Its journal entry goes; the agents keep the admitted
   * token, which orders nothing that was not already ordered (every later token is higher).
   */
  withdraw(why: string): Promise<void>;
}

export interface SwitchOptions {
  /**
   * The address goes back to the host it left in the switchover being rolled back: that host held
   * it active until moments ago (the agents get the full configuration with the call), so it needs
   * no shadow of it, and has none (shadows are placed on other hosts than the active one).
   */
  returning?: boolean;
  /**
   * The switch is one step of a VM switchover, whose own event records the outcome: this one's
   * audit entry says so (part_of), so readers of the log count the switchover once.
   */
  partOfVmSwitchover?: boolean;
}

/** A prepared switch neither completed nor abandoned by then is abandoned (its lock released). */
export const PREPARED_SWITCH_TIMEOUT_MS = 60_000;

export class IpSwitchover {
  private readonly nowMs: () => number;
  private readonly clockMs: () => number;
  private seq = 0;

  constructor(private readonly d: IpSwitchoverDeps) {
    this.nowMs = d.nowMs ?? Date.now;
    this.clockMs = d.clockMs ?? (() => performance.now());
  }

  /** Every VM with IP configuration: the host its address is active on and the hosts holding its shadows. */
  placements(): Array<{ vmId: string; activeHost: string; shadowHosts: string[] }> {
    // One pass over every shadow (list(vmId) scans them all: per VM it would be quadratic).
    const byVm = new Map<string, string[]>();
    for (const s of this.d.shadows.list()) byVm.set(s.vm_id, [...(byVm.get(s.vm_id) ?? []), s.host_id]);
    return this.d.vms.list().map((v) => ({ vmId: v.vm_id, activeHost: v.active_host, shadowHosts: byVm.get(v.vm_id) ?? [] }));
  }

  /** One VM's placement (undefined for a VM without IP configuration). */
  placementOf(vmId: string): { vmId: string; activeHost: string; shadowHosts: string[] } | undefined {
    const activeHost = this.activeHostOf(vmId);
    return activeHost === undefined ? undefined : { vmId, activeHost, shadowHosts: this.d.shadows.list(vmId).map((s) => s.host_id) };
  }

  /** Host the VM's address is active on; undefined for a VM without IP config. */
  activeHostOf(vmId: string): string | undefined {
    return this.d.vms.find(vmId)?.active_host;
  }

  /** Host the VM's address is active on (NotFoundError for a VM without IP config). */
  activeHost(vmId: string): string {
    return this.d.vms.get(vmId).active_host;
  }

  /** Why `hostId` cannot take the VM's address over now, or undefined (checked again by trigger()). */
  notCurrentReason(vmId: string, hostId: string): string | undefined {
    return this.d.shadows.notCurrentReason(vmId, hostId);
  }

  /** A token above every one handed out (for a VM switchover's journal). */
  nextFencingToken(): Promise<number> {
    return this.d.fencing.next();
  }

  /** Runs the switchover; throws FailedPreconditionError before touching anything when it cannot start. */
  trigger(vmId: string, destination: string, opts: SwitchOptions = {}): Promise<SwitchoverEvent> {
    return this.d.locks.run(vmId, () => this.run(vmId, destination, opts));
  }

  /**
   * Prepares a switch of `vmId` to `destination` (checks, token, agents' prepare) and holds the
   * VM's IP lock until the handle completes or abandons it. Throws FailedPreconditionError before
   * touching anything when it cannot start.
   */
  prepare(vmId: string, destination: string, timeoutMs = PREPARED_SWITCH_TIMEOUT_MS, opts: SwitchOptions = {}): Promise<PreparedIpSwitch> {
    return new Promise<PreparedIpSwitch>((resolveHandle, rejectHandle) => {
      this.d.locks
        .run(vmId, async () => {
          let p: PreparedState;
          try {
            p = await this.prepareLocked(vmId, destination, opts);
          } catch (err) {
            rejectHandle(err);
            return;
          }
          await new Promise<void>((release) => {
            let settled: Promise<SwitchoverEvent | undefined> | undefined;
            const once = (work: () => Promise<SwitchoverEvent | undefined>): Promise<SwitchoverEvent | undefined> => {
              settled ??= work().finally(() => {
                clearTimeout(timer);
                release();
              });
              return settled;
            };
            // A withdrawn switch has no event: completing or abandoning it afterwards is a caller's bug.
            const event = async (work: () => Promise<SwitchoverEvent | undefined>): Promise<SwitchoverEvent> => {
              const ev = await once(work);
              if (!ev) throw new Error(`the prepared IP switch of vm '${vmId}' was withdrawn`);
              return ev;
            };
            const handle: PreparedIpSwitch = {
              fencingToken: p.token,
              complete: (opts) => event(() => this.completeLocked(p, { afterGuestPausedMs: opts?.afterSourceGuestPausedMs })),
              abandon: (why) => event(() => this.abandonLocked(p, why)),
              withdraw: async (why) => void (await once(() => this.withdrawLocked(p, why))),
            };
            const timer = setTimeout(() => {
              handle.abandon(`prepared switch not completed within ${timeoutMs} ms`).catch((err) => this.d.logger.warn({ vmId, err: errorMessage(err) }, 'abandoning a stale prepared IP switch failed'));
            }, timeoutMs);
            timer.unref?.();
            resolveHandle(handle);
          });
        })
        .catch(rejectHandle);
    });
  }

  private async run(vmId: string, destination: string, opts: SwitchOptions): Promise<SwitchoverEvent> {
    return this.completeLocked(await this.prepareLocked(vmId, destination, opts));
  }

  /** Runs one step, records it in `steps`; resolves with the error, or undefined when it succeeded. */
  private async attempt(steps: SwitchoverStep[], name: string, hostId: string, work: () => Promise<unknown>): Promise<unknown> {
    const t0 = this.clockMs();
    try {
      await work();
      steps.push({ step: name, host_id: hostId, duration_ms: this.clockMs() - t0, ok: true, error: '' });
      return undefined;
    } catch (err) {
      steps.push({ step: name, host_id: hostId, duration_ms: this.clockMs() - t0, ok: false, error: errorMessage(err) });
      return err ?? new Error('failed');
    }
  }

  private async prepareLocked(vmId: string, destination: string, opts: SwitchOptions = {}): Promise<PreparedState> {
    const vm = this.d.vms.get(vmId);
    const source = vm.active_host;
    if (source === destination) throw new FailedPreconditionError(`vm '${vmId}' is already active on '${destination}'`);
    const reason = opts.returning ? undefined : this.d.shadows.notCurrentReason(vmId, destination);
    if (reason) throw new FailedPreconditionError(`cannot switch vm '${vmId}' to '${destination}': ${reason}`);

    const started = this.clockMs();
    const startedAtUnixMs = this.nowMs();
    let journal!: JournalEntry;
    // The token and the journal naming it: one durable write.
    const token = await this.d.fencing.next((t) => {
      journal = { vm_id: vmId, source_host: source, destination_host: destination, fencing_token: t, started_at_unix_ms: startedAtUnixMs };
      return [{ type: 'put', key: JOURNAL_PREFIX + vmId, value: journal }];
    });
    const steps: SwitchoverStep[] = [];
    const config = vm.config;
    // Both agents admit the token durably before the address moves, so neither the deactivation
    // nor the activation waits for a disk write while no host holds the address. A source that
    // cannot prepare still admits the token in its deactivation; a destination that cannot prepare
    // is unlikely to activate, so nothing moves (an agent without the call is simply not prepared).
    // With hand-over support, the source itself calls the destination right after its removal.
    const prepare = this.d.agents.prepare?.bind(this.d.agents);
    // A fresh key per switchover: a datagram of an earlier one cannot be replayed into this one.
    const handoff: IpHandoffHosts = { source, destination, datagramKey: randomBytes(HANDOVER_DATAGRAM_KEY_BYTES) };
    const prepareHandoff = this.d.agents.deactivateAndHandOver ? handoff : undefined;
    // Both at once (the destination's asked first): the source rehearses the hand-over after its
    // answer and tries again until the destination expects it.
    const [destinationError, sourceError] = prepare
      ? await Promise.all([
          this.attempt(steps, 'prepare', destination, () => prepare(destination, config, token, prepareHandoff)),
          this.attempt(steps, 'prepare', source, () => prepare(source, config, token, prepareHandoff)),
        ])
      : [new Error('not prepared'), new Error('not prepared')];
    return { vmId, source, destination, config, token, journal, steps, started, sourceError, destinationError, partOfVmSwitchover: opts.partOfVmSwitchover === true, handoff };
  }

  private async completeLocked(p: PreparedState, sourceOpts: DeactivateOptions = {}): Promise<SwitchoverEvent> {
    const { vmId, source, destination, config, token, steps } = p;
    const step = async (name: string, hostId: string, work: () => Promise<unknown>): Promise<boolean> => (await this.attempt(steps, name, hostId, work)) === undefined;
    let status: SwitchoverEvent['status'] = 'SUCCEEDED';
    let error = '';
    const deactivateAndHandOver = this.d.agents.deactivateAndHandOver?.bind(this.d.agents);
    const hosts = p.handoff;
    const handOver = deactivateAndHandOver && p.sourceError === undefined && p.destinationError === undefined ? deactivateAndHandOver : undefined;
    let handedOver = false;
    const failed = (): string => steps[steps.length - 1].error;
    if (this.d.agents.prepare && p.destinationError !== undefined && !isUnimplemented(p.destinationError)) {
      error = `${destination} not prepared: ${errorMessage(p.destinationError)}`;
      status = 'ROLLED_BACK';
    } else if (handOver) {
      let outcome: HandoverOutcome | undefined;
      if (!(await step('deactivate', source, async () => (outcome = await handOver(hosts, config, token, sourceOpts))))) {
        // The source may have removed the address and even handed it over before the call failed:
        // the destination lets go first, then the source takes it back, so at most one holds it.
        error = failed();
        await step('rollback-deactivate', destination, () => this.d.agents.deactivate(destination, config, token));
        status = (await step('rollback-activate', source, () => this.d.agents.activate(source, config, token))) ? 'ROLLED_BACK' : 'FAILED';
      } else {
        handedOver = outcome!.handedOver;
        steps.push({ step: 'handover', host_id: destination, duration_ms: outcome!.destinationMs ?? 0, ok: handedOver, error: outcome!.error ?? '' });
      }
    } else if (!(await step('deactivate', source, () => this.d.agents.deactivate(source, config, token, sourceOpts)))) {
      // The source may have removed part of its state: put it back so it alone holds the address.
      error = failed();
      status = (await step('rollback-activate', source, () => this.d.agents.activate(source, config, token))) ? 'ROLLED_BACK' : 'FAILED';
    }
    if (status !== 'SUCCEEDED') {
      // Nothing more: the address stays (or is back) on the source.
    } else if (!handedOver && !(await step('activate', destination, () => this.d.agents.activate(destination, config, token)))) {
      error = failed();
      await step('rollback-deactivate', destination, () => this.d.agents.deactivate(destination, config, token));
      status = (await step('rollback-activate', source, () => this.d.agents.activate(source, config, token))) ? 'ROLLED_BACK' : 'FAILED';
    } else {
      await step('commit', 'coordinator', async () => {
        await this.d.vms.setActiveHost(vmId, destination);
        await this.d.shadows.promoted(vmId, destination);
      });
      // The address has moved; a lease backend that is down must not move it back. The
      // reconciliation sweep brings the lease record in line later.
      const shadowHosts = this.d.shadows.list(vmId).map((s) => s.host_id).filter((h) => h !== destination);
      if (!(await step('lease', this.d.leases.name, () => this.d.leases.record(config, destination, shadowHosts)))) {
        error = `lease record not updated: ${steps[steps.length - 1].error}`;
      }
    }
    return this.record(p, status, error);
  }

  /** A prepared switch that is not carried out: nothing moved, recorded ROLLED_BACK. */
  private abandonLocked(p: PreparedState, why: string): Promise<SwitchoverEvent> {
    return this.record(p, 'ROLLED_BACK', `not carried out: ${why}`);
  }

  /** A prepared switch whose switchover was refused: nothing moved, so nothing is recorded. */
  private async withdrawLocked(p: PreparedState, why: string): Promise<undefined> {
    await this.d.store.del(JOURNAL_PREFIX + p.vmId);
    this.d.logger.debug({ vmId: p.vmId, destination: p.destination, token: p.token, why }, 'prepared IP switch withdrawn');
    return undefined;
  }

  private async record(p: PreparedState, status: SwitchoverEvent['status'], error: string): Promise<SwitchoverEvent> {
    const { vmId, source, destination, config, token, steps, journal } = p;
    const event: SwitchoverEvent = {
      id: `${journal.started_at_unix_ms.toString(36)}-${(this.seq++).toString(36)}-${vmId}`,
      timestamp_unix_ms: journal.started_at_unix_ms,
      vm_id: vmId,
      source_host: source,
      destination_host: destination,
      status,
      fencing_token: token,
      steps,
      total_ms: this.clockMs() - p.started,
      error,
    };
    // The record replaces the journal in one durable write.
    await this.d.store.batch([
      { type: 'del', key: JOURNAL_PREFIX + vmId },
      { type: 'put', key: `${RECORD_PREFIX}${String(event.timestamp_unix_ms).padStart(16, '0')}-${event.id}`, value: event },
    ]);
    await this.d.events.append({
      kind: status === 'FAILED' ? 'EVENT_KIND_ALERT' : 'EVENT_KIND_SWITCHOVER',
      host_id: status === 'SUCCEEDED' ? destination : source,
      vm_id: vmId,
      message: `switchover of ${vmId} (${config.address}) ${source} -> ${destination}: ${status} in ${event.total_ms.toFixed(2)} ms${error ? ` (${error})` : ''}`,
      attributes: {
        status,
        source_host: source,
        destination_host: destination,
        fencing_token: String(token),
        steps: formatSteps(steps),
        total_ms: event.total_ms.toFixed(3),
        ...(p.partOfVmSwitchover ? { part_of: PART_OF_VM_SWITCHOVER } : {}),
      },
    });
    this.d.logger.info({ vmId, source, destination, status, token, totalMs: event.total_ms }, 'switchover finished');
    return event;
  }

  async list(vmId: string | undefined, limit: number): Promise<SwitchoverEvent[]> {
    const all = await this.d.store.list<SwitchoverEvent>(RECORD_PREFIX, { reverse: true });
    return all.map((e) => e.value).filter((e) => !vmId || e.vm_id === vmId).slice(0, limit);
  }
}

// The VMs of one host as the agent holds them: local QEMUs (declared and launched, or discovered)
// and shadow QEMUs (launched ahead of a switchover with -incoming defer on the shadow image, kept
// alive by a supervision timer). Pause, resume (a loaded shadow becomes the local VM), and the
// source half of the device-state-only migration.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, promises as fs, readlinkSync } from 'node:fs';
import * as path from 'node:path';
import type { Logger } from 'pino';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError, UmbraError, UnavailableError, errorMessage } from '../../shared/errors';
import { KeyedMutex } from '../../shared/keyed-mutex';
import { settle, unsettle } from '../../shared/settle';
import { HELD_DEVICE_STATE_CAPABILITIES, launchShadowQemu, migrateDeviceState, resumeGuest, startHeldDeviceStateMigration, waitIncomingLoaded, type DeviceStateMigrationResult, type HeldDeviceStateMigration } from './device-state-migration';
import { armEndAfterStop } from './arm-end-after-stop';
import { attachQemu, launchQemu, type QemuProcess } from './qemu-process';
import { discoverQemuProcesses } from './qemu-discovery';
import { parseVmDefinition, type VmDefinition } from './vm-definition';
import type { VmAgentConfig } from './vm-module-config';
import { deleteTap, ensureTap } from './vm-agent-tap';

const STATUS_TIMEOUT_MS = 2000;
const STOP_GRACE_MS = 1500;
/**
 * A promoted shadow replaces the paused copy the VM left here on an earlier switchover; that copy
 * is stopped this much later: its teardown (~300 ms of QEMU exiting, measured in the lab) is kept
 * out of the guest's first moments and out of the resume's answer.
 */
const REPLACED_COPY_STOP_DELAY_MS = 1000;
/** A resume that finds the shadow still loading the device state waits this long for it. */
const RESUME_LOAD_WAIT_MS = 5000;
/** Fallback re-ask interval while waiting (the MIGRATION event normally ends the wait). */
const LOAD_POLL_MS = 50;
/** Upper bound of an armed resume's wait for the device state (the request's own bound applies first). */
export const MAX_ARMED_RESUME_WAIT_MS = 600_000;

/** An armed resume was called off (a pause or the shadow's removal came first): the guest did not run here. */
export class ResumeCancelledError extends UmbraError {
  constructor(vmId: string, why: string) {
    super('ABORTED', `vm '${vmId}': armed resume cancelled (${why}); the guest did not run here`);
    this.name = 'ResumeCancelledError';
  }
}

export type VmRole = 'local' | 'shadow';

/** The source steps of a switchover, in the order switchOut() runs them. */
export type SwitchOutStep = 'pause-source' | 'flush-memory' | 'migrate-device-state';

/** What switchOut() did: each step it ran with its own time; `failedStep` and `error` when one failed (the later ones did not run). */
export interface SwitchOutResult {
  pauseMs: number;
  /** Draining the replication before the pause (the guest still running). */
  quiesceMs?: number;
  /** When the guest was paused (Date.now()). */
  pausedAtMs?: number;
  flushMs?: number;
  finalEpoch?: number;
  migration?: DeviceStateMigrationResult;
  /** Time of the step that failed, ms. */
  failedMs?: number;
  failedStep?: SwitchOutStep;
  error?: string;
}

/** The replication module's final flush of a paused guest (the acked epoch), as switchOut() calls it. */
export type FlushMemory = (vmId: string, timeoutMs: number, waitFor?: readonly string[]) => Promise<{ finalEpoch: number; flushMs: number }>;

/** The replication module as switchOut() uses it: quiesce before the pause (optional), flush after. */
export interface SwitchOutMemory {
  flush: FlushMemory;
  quiesce?: (vmId: string, maxWaitMs: number, waitFor?: readonly string[]) => Promise<{ waitedMs: number; drained: boolean }>;
}

/**
 * How long switchOut() lets the replication drain before pausing (the guest still runs meanwhile,
 * so this is not in its pause; what it writes meanwhile goes with the final flush).
 */
export const QUIESCE_MAX_MS = 150;

function requireMigrationUri(uri: unknown): string {
  if (typeof uri !== 'string' || !/^tcp:[A-Za-z0-9.:[\]-]+:\d{1,5}$|^unix:\/[^,\0\n]+$/.test(uri)) {
    throw new InvalidArgumentError('destination_uri', 'must be tcp:HOST:PORT or unix:/path');
  }
  return uri;
}

export interface VmView {
  vmId: string;
  role: VmRole;
  status: string;
  running: boolean;
  pid: number;
  memoryBytes: number;
  definition?: VmDefinition;
  incomingUri: string;
  ramPath: string;
  relaunches: number;
  lastError: string;
}

interface LocalVm {
  vmId: string;
  def?: VmDefinition;
  proc: QemuProcess;
}

interface ShadowVm {
  vmId: string;
  /** The source's definition the shadow was prepared from (compared on re-prepare). */
  sourceDef: VmDefinition;
  proc?: QemuProcess;
  port: number;
  incomingUri: string;
  ramPath: string;
  qmpSocketPath: string;
  serialLogPath: string;
  tapNames: Record<string, string>;
  relaunches: number;
  lastError: string;
  /** A migration stream arrived: relaunching would lose the guest, so supervision leaves it. */
  loaded: boolean;
  /** Its QEMU is being started (taps, image, process, QMP): no process yet, and none missing. */
  launching: boolean;
}

export interface VmAgentHostDeps {
  config: VmAgentConfig;
  dataDir: string;
  /** Shadow image path of a VM (the replication receiver's file). */
  ramPathOf(vmId: string): string;
  /** LD_PRELOAD library for launched QEMUs, if any. */
  preloadLibraryPath?: string;
  log: Logger;
}

/** QEMU's autostart armed on a shadow waiting for its device state (see armAutostart). */
interface AutostartArm {
  /** QEMU's time of the guest's start, once its RESUME event was seen. */
  resumedAtMs(): number | undefined;
  /** Whether the guest runs (the RESUME event seen, else QEMU asked). */
  running(): Promise<boolean>;
}

/**
 * A cont sent while the shadow QEMU still waits for the incoming device state does not run the
 * guest: it tells QEMU to run it the moment the load ends (QEMU's autostart; a stop while it waits
 * takes that back). The guest's pause then holds no event delivery, VM lock or cont round trip of
 * this agent: 5-16 ms of 40-60 in the vm-switchover bench. The source must not send its run state
 * (its QEMU started with migration.store-global-state=off, as agents start them): a paused source's
 * state would keep the guest paused here, and the armed resume's own cont then runs it. Undefined
 * when QEMU refused the cont (the armed resume then conts after the load, as before). `listening`
 * ends the wait for the RESUME event once its time is no longer read.
 */
async function armAutostart(proc: QemuProcess, timeoutMs: number, listening: AbortSignal): Promise<AutostartArm | undefined> {
  let resumedAtMs: number | undefined;
  // Listening before the cont: the RESUME comes with the load's end, before its MIGRATION event.
  const resumed = proc.qmp.waitForEvent('RESUME', timeoutMs, undefined, listening);
  resumed.then((ev) => (resumedAtMs = ev.timestampMs ?? Date.now()), () => undefined);
  try {
    await proc.qmp.cont();
  } catch {
    return undefined;
  }
  return {
    resumedAtMs: () => resumedAtMs,
    running: async () => resumedAtMs !== undefined || (await proc.qmp.queryStatus()).running,
  };
}

/** Tap names are at most 15 chars: a short hash keeps them unique per (VM, NIC). Pure. */
export function shadowTapName(vmId: string, netdevId: string): string {
  return `ush${createHash('sha256').update(`${vmId}\0${netdevId}`).digest('hex').slice(0, 10)}`;
}

function netnsOf(pid: number): string {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return `unknown:${pid}`;
  }
}

function sameDefinition(a: VmDefinition, b: VmDefinition): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export class VmAgentHost {
  private readonly locals = new Map<string, LocalVm>();
  /** Paused copies replaced by a promoted shadow, stopped a moment later (or at close). */
  private readonly replaced = new Set<QemuProcess>();
  private readonly shadows = new Map<string, ShadowVm>();
  private readonly locks = new KeyedMutex();
  /** Armed resumes waiting for their shadow's device state, by VM: pause() and removeShadow() abort them. */
  private readonly armed = new Map<string, AbortController>();
  /** Armed resumes in progress, by VM: settled once the device state's load is seen here or the arm ended otherwise. */
  private readonly armedLoads = new Map<string, Promise<void>>();
  /** VMs whose switch-out runs now (their pause waiters are settled when it ends). */
  private readonly switchingOut = new Set<string>();
  /** awaitGuestPaused() callers, by VM: settled by the next pause of the local guest, or by the end of a switch-out. */
  private readonly pauseWaiters = new Map<string, Set<{ resolve(): void; reject(err: Error): void }>>();
  private readonly vmDir: string;
  private timer?: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly d: VmAgentHostDeps) {
    this.vmDir = path.join(d.dataDir, 'vm');
  }

  /** Attaches to running QEMUs, launches declared VMs not yet running, starts supervision. */
  async start(): Promise<void> {
    mkdirSync(this.vmDir, { recursive: true });
    const declared = new Map(this.d.config.vms.map((v) => [v.qmpSocketPath, v]));
    if (this.d.config.discover || declared.size > 0) {
      for (const q of await discoverQemuProcesses().catch(() => [])) {
        const def = declared.get(q.qmpSocketPath);
        const vmId = def?.id ?? q.definition?.id;
        if (!vmId) continue;
        if (!def && !this.d.config.discover) continue;
        // Another host's QEMU (hosts as network namespaces on one machine) is not ours to drive.
        if (netnsOf(q.pid) !== netnsOf(process.pid)) continue;
        try {
          const proc = await attachQemu(q.pid, q.qmpSocketPath, { def: def ?? q.definition });
          if (q.qmpSocketPath.startsWith(this.vmDir + path.sep) && (await proc.qmp.queryStatus()).status === 'inmigrate') {
            // A shadow left by a previous run of this agent: its listener state is unknown, so it is
            // replaced when the coordinator prepares the shadow again.
            await proc.kill();
            continue;
          }
          this.locals.set(vmId, { vmId, def: def ?? q.definition, proc });
          this.d.log.info({ vmId, pid: q.pid }, 'attached to running QEMU');
        } catch (err) {
          this.d.log.warn({ vmId, pid: q.pid, err: errorMessage(err) }, 'cannot attach to QEMU');
        }
      }
    }
    if (this.d.config.launchDeclared) {
      for (const def of this.d.config.vms) {
        if (this.locals.has(def.id)) continue;
        try {
          const proc = await launchQemu({ def, qemuBinary: this.d.config.qemuBinary, preloadLibraryPath: this.d.preloadLibraryPath });
          this.locals.set(def.id, { vmId: def.id, def, proc });
        } catch (err) {
          this.d.log.error({ vmId: def.id, err: errorMessage(err) }, 'cannot launch declared VM');
        }
      }
    }
    this.timer = setInterval(() => void this.supervise(), this.d.config.superviseIntervalMs);
    this.timer.unref();
  }

  private requireVmId(vmId: unknown): string {
    if (typeof vmId !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(vmId)) throw new InvalidArgumentError('vm_id', 'must be 1-64 chars of A-Z a-z 0-9 _ . -');
    return vmId;
  }

  private local(vmId: string): LocalVm {
    const vm = this.locals.get(this.requireVmId(vmId));
    if (!vm) throw new NotFoundError('vm', vmId);
    return vm;
  }

  /** Launches (or keeps) the shadow QEMU of `definitionJson`'s VM. */
  prepareShadow(vmId: string, definitionJson: string): Promise<{ view: VmView; launched: boolean }> {
    this.requireVmId(vmId);
    let raw: unknown;
    try {
      raw = JSON.parse(definitionJson);
    } catch {
      throw new InvalidArgumentError('definition_json', 'must be a JSON VM definition');
    }
    const def = parseVmDefinition(raw);
    if (def.id !== vmId) throw new InvalidArgumentError('definition_json', `defines vm '${def.id}', not '${vmId}'`);
    if (!this.d.config.incomingHost) throw new FailedPreconditionError(`this host cannot hold shadow VMs: vm.incoming_host is not configured`);
    return this.locks.run(vmId, async () => {
      const existing = this.shadows.get(vmId);
      if (existing && sameDefinition(existing.sourceDef, def) && existing.proc?.running && !existing.loaded) {
        return { view: await this.viewShadow(existing), launched: false };
      }
      if (existing) await this.dropShadow(existing, false);
      await this.retireStaleLocal(vmId);
      const port = this.freePort();
      const enc = encodeURIComponent(vmId);
      const shadow: ShadowVm = {
        vmId,
        sourceDef: def,
        port,
        incomingUri: `tcp:${this.d.config.incomingHost}:${port}`,
        ramPath: this.d.ramPathOf(vmId),
        qmpSocketPath: path.join(this.vmDir, `${enc}.shadow.qmp`),
        serialLogPath: path.join(this.vmDir, `${enc}.shadow.serial`),
        tapNames: Object.fromEntries(def.nics.map((n) => [n.netdevId, shadowTapName(vmId, n.netdevId)])),
        relaunches: existing ? existing.relaunches : 0,
        lastError: '',
        loaded: false,
        launching: false,
      };
      this.shadows.set(vmId, shadow);
      await this.launchShadow(shadow);
      return { view: await this.viewShadow(shadow), launched: true };
    });
  }

  /**
   * A shadow is wanted here only while the guest runs elsewhere, so a paused local QEMU of the same
   * VM on the shadow's taps is a promoted shadow left by a rolled-back switchover. It holds those
   * taps (QEMU opens them exclusively), so it is stopped: a new shadow can launch, and
   * RemoveShadowVm leaves nothing behind. A running local copy is the guest itself: refused.
   */
  private async retireStaleLocal(vmId: string): Promise<boolean> {
    const stale = this.locals.get(vmId);
    if (!stale) return false;
    const st = await this.status(stale.proc);
    if (st.running) throw new FailedPreconditionError(`vm '${vmId}' is running on this host: it cannot be shadowed here`);
    const promoted = stale.def?.nics.some((n) => n.tapName === shadowTapName(vmId, n.netdevId)) ?? false;
    if (!promoted) return false;
    this.locals.delete(vmId);
    await stale.proc.stop(STOP_GRACE_MS).catch(() => undefined);
    this.d.log.warn({ vmId, pid: stale.proc.pid, status: st.status }, 'stale copy of a promoted shadow VM stopped');
    return true;
  }

  private freePort(): number {
    const used = new Set([...this.shadows.values()].map((s) => s.port));
    for (let p = this.d.config.incomingPortBase; p < this.d.config.incomingPortBase + this.d.config.incomingPortCount; p++) if (!used.has(p)) return p;
    throw new UnavailableError(`no free incoming port in ${this.d.config.incomingPortBase}+${this.d.config.incomingPortCount}`);
  }

  private async launchShadow(s: ShadowVm): Promise<void> {
    // Seconds on a loaded host: health shows it as launching, not as a shadow that died.
    s.launching = true;
    try {
      for (const tap of Object.values(s.tapNames)) await ensureTap(tap, this.d.config.vmBridge);
      mkdirSync(path.dirname(s.ramPath), { recursive: true });
      if (!existsSync(s.ramPath)) {
        // QEMU would create it too; creating it here keeps ownership and sparseness predictable.
        await fs.writeFile(s.ramPath, '');
        await fs.truncate(s.ramPath, s.sourceDef.memorySizeBytes);
      }
      s.proc = await launchShadowQemu({
        def: s.sourceDef,
        ramFile: s.ramPath,
        tapNames: s.tapNames,
        qmpSocketPath: s.qmpSocketPath,
        serialLogPath: s.serialLogPath,
        incomingUri: `tcp:${this.d.config.incomingHost}:${s.port}`,
        qemuBinary: this.d.config.qemuBinary,
        preloadLibraryPath: this.d.preloadLibraryPath,
      });
      s.lastError = '';
      this.d.log.info({ vmId: s.vmId, pid: s.proc.pid, incoming: s.incomingUri }, 'shadow VM ready');
    } catch (err) {
      s.lastError = errorMessage(err);
      throw err;
    } finally {
      s.launching = false;
    }
  }

  private async dropShadow(s: ShadowVm, deleteTaps: boolean): Promise<void> {
    await s.proc?.stop(STOP_GRACE_MS).catch(() => undefined);
    s.proc = undefined;
    if (deleteTaps) for (const tap of Object.values(s.tapNames)) await deleteTap(tap).catch(() => undefined);
  }

  removeShadow(vmId: string): Promise<boolean> {
    this.requireVmId(vmId);
    this.disarm(vmId, 'shadow removed');
    return this.locks.run(vmId, async () => {
      const s = this.shadows.get(vmId);
      if (!s) return this.retireStaleLocal(vmId).catch(() => false);
      this.shadows.delete(vmId);
      await this.dropShadow(s, true);
      return true;
    });
  }

  /**
   * Resolves once this host's guest of `vmId` is paused and, while a switch-out of it runs, once
   * that is over (a switchover's address hand-over waits for it: the address must leave only once
   * the guest no longer answers). At once when the VM does not run here or is not running and not
   * being switched out; rejects with FailedPreconditionError when the switch-out fails, or after
   * `timeoutMs`.
   */
  async awaitGuestPaused(vmId: string, timeoutMs: number): Promise<void> {
    this.requireVmId(vmId);
    const local = this.locals.get(vmId);
    if (!local?.proc.running) return;
    let waiter!: { resolve(): void; reject(err: Error): void };
    let timer: NodeJS.Timeout | undefined;
    const paused = new Promise<void>((resolve, reject) => (waiter = { resolve, reject }));
    // Registered before the status question, so a pause in between is not missed.
    const set = this.pauseWaiters.get(vmId) ?? new Set();
    set.add(waiter);
    this.pauseWaiters.set(vmId, set);
    try {
      const st = await this.status(local.proc);
      if (!st.running && !this.switchingOut.has(vmId)) return;
      await Promise.race([
        paused,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new FailedPreconditionError(`vm '${vmId}': the guest was not paused within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      set.delete(waiter);
      if (set.size === 0 && this.pauseWaiters.get(vmId) === set) this.pauseWaiters.delete(vmId);
    }
  }

  private settlePauseWaiters(vmId: string, err?: Error): void {
    for (const w of this.pauseWaiters.get(vmId) ?? []) {
      if (err) w.reject(err);
      else w.resolve();
    }
  }

  /** QMP stop of the VM's local QEMU (else its shadow); idempotent. NOT_FOUND when neither exists. */
  pause(vmId: string): Promise<number> {
    // Before queueing for the lock: an armed resume that has not run the guest yet never will.
    this.disarm(this.requireVmId(vmId), 'paused');
    return this.locks.run(vmId, async () => {
      const t0 = performance.now();
      // A shadow that never became the local VM is paused too (the guest must not run there).
      const shadow = this.shadows.get(vmId);
      const proc = this.locals.get(vmId)?.proc ?? (shadow ? shadow.proc : this.local(vmId).proc);
      // QMP stop without asking the status first (one QMP round trip less in the guest's pause):
      // stop of a guest that is not running keeps its state (paused, postmigrate, inmigrate).
      if (proc?.running) await proc.qmp.stop();
      // During a switch-out the waiters are settled when it is over (see switchOut()).
      if (proc && proc === this.locals.get(vmId)?.proc && !this.switchingOut.has(vmId)) this.settlePauseWaiters(vmId);
      return performance.now() - t0;
    });
  }

  /**
   * Runs the guest here. A shadow that has received the device state is resumed and becomes the
   * local VM (a stale local QEMU of the same VM, e.g. an old source, is stopped); else the local VM.
   */
  resume(vmId: string): Promise<number> {
    return this.locks.run(this.requireVmId(vmId), () => this.resumeLocked(vmId));
  }

  /**
   * Armed resume, sent by the coordinator together with the source's switch-out: waits (without
   * the VM's lock, up to `timeoutMs`) until the shadow has loaded the incoming device state, then
   * runs the guest at once, so the guest's pause does not include the source's answer to the
   * coordinator, a journal write and a resume call. pause() or removeShadow() in the meantime
   * calls it off (ResumeCancelledError: the guest did not run). A VM already promoted here (a
   * retry) is resumed as by resume(). Resolves with the time from the call to the guest running.
   */
  async resumeWhenLoaded(vmId: string, timeoutMs: number): Promise<{ durationMs: number; waitedMs: number; runningAtMs: number }> {
    this.requireVmId(vmId);
    let seen!: () => void;
    const loadSeen = new Promise<void>((resolve) => (seen = resolve));
    const run = this.runWhenLoaded(vmId, timeoutMs, seen);
    // Settled by the load being seen, or by the run ending without it (failed, called off).
    const settled = Promise.race([loadSeen, run.then(() => undefined, () => undefined)]);
    this.armedLoads.set(vmId, settled);
    void run.catch(() => undefined).finally(() => {
      if (this.armedLoads.get(vmId) === settled) this.armedLoads.delete(vmId);
    });
    return run;
  }

  /**
   * Resolves once an armed resume of `vmId` in progress here has seen the shadow QEMU's load of the
   * device state end (the guest is being resumed), has failed or been called off, or after
   * `timeoutMs`; at once when none is in progress. For the IP activation of a switchover's
   * hand-over: it does not take the CPU from the shadow QEMU loading the device state inside the
   * guest's pause (7-11 ms of it in the lab), and runs beside the resume instead of after it
   * (waiting for the guest to run put the activation where the resumed TCG guest took a core: 12
   * to 32 ms after the guest ran, all of it in the client's interruption, in the lab).
   */
  async armedResumeLoaded(vmId: string, timeoutMs: number): Promise<void> {
    const loaded = this.armedLoads.get(vmId);
    if (!loaded) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([loaded, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  private async runWhenLoaded(vmId: string, timeoutMs: number, loadSeen: () => void = () => undefined): Promise<{ durationMs: number; waitedMs: number; runningAtMs: number }> {
    const t0 = performance.now();
    const s = this.shadows.get(vmId);
    if (!s?.proc?.running) {
      const durationMs = await this.resume(vmId);
      return { durationMs, waitedMs: 0, runningAtMs: Date.now() };
    }
    this.disarm(vmId, 'armed again');
    const arm = new AbortController();
    this.armed.set(vmId, arm);
    const proc = s.proc;
    const waitMs = Math.min(timeoutMs, MAX_ARMED_RESUME_WAIT_MS);
    // Its RESUME listener is read only until this ends: not left waiting to its timeout after a call-off.
    const listening = new AbortController();
    const autostart = await armAutostart(proc, waitMs + RESUME_LOAD_WAIT_MS, listening.signal);
    try {
      return await this.runArmed(vmId, t0, proc, waitMs, arm, autostart, loadSeen);
    } finally {
      listening.abort('the armed resume ended');
    }
  }

  /** runWhenLoaded once the shadow is armed (`autostart` undefined: QEMU refused the early cont). */
  private async runArmed(
    vmId: string,
    t0: number,
    proc: QemuProcess,
    waitMs: number,
    arm: AbortController,
    autostart: AutostartArm | undefined,
    loadSeen: () => void,
  ): Promise<{ durationMs: number; waitedMs: number; runningAtMs: number }> {
    let loaded: { completedAtMs?: number; seenBy?: string; queries?: number };
    let forceCont = false;
    try {
      loaded = await waitIncomingLoaded(proc.qmp, waitMs, LOAD_POLL_MS, arm.signal);
    } catch (err) {
      if (!autostart) {
        if (arm.signal.aborted) throw new ResumeCancelledError(vmId, String(arm.signal.reason));
        throw err;
      }
      // QEMU may have run the guest at the load's end just before the call-off or the failure: a
      // stop disarms it (or pauses the guest), and its run state then tells which it was.
      const calledOff = arm.signal.aborted;
      const end = armEndAfterStop(await this.locks.run(vmId, () => this.disarmAutostart(proc)), calledOff);
      if (end === 'ran') return this.ranBeforeCallOff(vmId, t0, autostart, calledOff ? String(arm.signal.reason) : errorMessage(err));
      if (end === 'not-run') {
        if (calledOff) throw new ResumeCancelledError(vmId, String(arm.signal.reason));
        throw err;
      }
      // The device state loaded as the wait gave up: the guest runs here as armed (by a cont now).
      loaded = { seenBy: 'query' };
      forceCont = true;
    } finally {
      if (this.armed.get(vmId) === arm) this.armed.delete(vmId);
    }
    const waitedMs = performance.now() - t0;
    const seenAtMs = Date.now();
    loadSeen();
    let lockedAtMs = 0;
    let calledOffAfterRun: string | undefined;
    await this.locks.run(vmId, async () => {
      lockedAtMs = Date.now();
      if (arm.signal.aborted) {
        // A pause queued behind the load wins: it was asked after the arm. Armed, QEMU ran the
        // guest at the load's end (the pause stopped it again): that is said, not hidden.
        if (autostart && armEndAfterStop(await this.disarmAutostart(proc), true) === 'ran') {
          calledOffAfterRun = String(arm.signal.reason);
          return;
        }
        throw new ResumeCancelledError(vmId, String(arm.signal.reason));
      }
      return this.resumeLocked(vmId, proc, forceCont ? undefined : autostart);
    });
    if (calledOffAfterRun !== undefined) return this.ranBeforeCallOff(vmId, t0, autostart!, calledOffAfterRun);
    const runningAtMs = (!forceCont && autostart?.resumedAtMs()) || Date.now();
    // QEMU's time of the load's end against when this agent saw it, got the VM's lock and had the
    // guest running (QEMU's own time of that when it ran the guest itself): the agent's delay in
    // the guest's pause, in its parts.
    this.d.log.info({ vmId, waitedMs: Math.round(waitedMs * 10) / 10, qemuLoadedAtMs: loaded.completedAtMs, loadSeenBy: loaded.seenBy, loadQueries: loaded.queries, seenAtMs, lockedAtMs, runningAtMs, runBy: !forceCont && autostart?.resumedAtMs() !== undefined ? 'qemu' : 'cont' }, 'armed resume: the guest runs here');
    return { durationMs: performance.now() - t0, waitedMs, runningAtMs };
  }

  /**
   * Stops an autostart-armed shadow (under the VM's lock): disarms QEMU's autostart while it still
   * waits for the device state, else pauses the guest it ran. Resolves with the run state after it.
   */
  private async disarmAutostart(proc: QemuProcess): Promise<string> {
    if (!proc.running) return 'exited';
    try {
      await proc.qmp.stop();
      return (await proc.qmp.queryStatus()).status;
    } catch (err) {
      this.d.log.warn({ pid: proc.pid, err: errorMessage(err) }, 'disarming an armed shadow QEMU failed');
      return 'unknown';
    }
  }

  /**
   * An armed resume called off (or timed out) after QEMU had run the guest here at the load's end:
   * the guest ran (and is paused again), which the caller must know (its rollback re-copies this
   * shadow), so this resolves as a run rather than as ResumeCancelledError.
   */
  private ranBeforeCallOff(vmId: string, t0: number, autostart: AutostartArm, why: string): { durationMs: number; waitedMs: number; runningAtMs: number } {
    const runningAtMs = autostart.resumedAtMs() ?? Date.now();
    this.d.log.warn({ vmId, runningAtMs, why }, 'armed resume called off after the guest ran here (paused again)');
    return { durationMs: performance.now() - t0, waitedMs: performance.now() - t0, runningAtMs };
  }

  private stopReplacedLater(vmId: string, proc: QemuProcess): void {
    this.replaced.add(proc);
    setTimeout(() => {
      if (!this.replaced.delete(proc)) return; // stopped by close()
      proc.stop(STOP_GRACE_MS).then(
        () => this.d.log.info({ vmId, pid: proc.pid }, 'copy replaced by the promoted shadow stopped'),
        (err) => this.d.log.warn({ vmId, pid: proc.pid, err: errorMessage(err) }, 'stopping the copy replaced by the promoted shadow failed'),
      );
    }, REPLACED_COPY_STOP_DELAY_MS).unref();
  }

  private disarm(vmId: string, why: string): void {
    this.armed.get(vmId)?.abort(why);
    this.armed.delete(vmId);
  }

  /**
   * resume()'s work, under the VM's lock. `loaded`: the shadow QEMU the caller has just seen
   * complete its incoming migration (not asked again unless the shadow was relaunched since).
   */
  private async resumeLocked(vmId: string, loaded?: QemuProcess, autostart?: AutostartArm): Promise<number> {
    const t0 = performance.now();
    const s = this.shadows.get(vmId);
    if (s?.proc?.running) {
      let info = loaded === s.proc ? { status: 'completed' } : await s.proc.qmp.queryMigrate();
      if (info.status === 'active' || info.status === 'setup') {
        // The source reports completion before this side has finished loading (some ms): wait
        // for it (bounded) instead of failing a switchover that is about to succeed.
        await waitIncomingLoaded(s.proc.qmp, RESUME_LOAD_WAIT_MS, LOAD_POLL_MS).catch(() => undefined);
        info = await s.proc.qmp.queryMigrate();
      }
      if (info.status === 'completed') {
        // QEMU ran the guest itself at the load's end, unless the source sent its paused run state
        // (a QEMU not started by an agent): then it waits for this cont.
        if (!(autostart && loaded === s.proc && (await autostart.running()))) await resumeGuest(s.proc.qmp, undefined, true);
        const old = this.locals.get(vmId);
        this.locals.set(vmId, { vmId, def: { ...s.sourceDef, nics: s.sourceDef.nics.map((n) => ({ ...n, tapName: s.tapNames[n.netdevId] ?? n.tapName })), qmpSocketPath: s.qmpSocketPath, serialLogPath: s.serialLogPath }, proc: s.proc });
        this.shadows.delete(vmId);
        if (old && old.proc !== s.proc) this.stopReplacedLater(vmId, old.proc);
        this.d.log.info({ vmId, pid: s.proc.pid }, 'shadow VM promoted: the guest runs here');
        return performance.now() - t0;
      }
      if (info.status === 'active' || info.status === 'setup') throw new FailedPreconditionError(`vm '${vmId}': the shadow is still receiving the device state`);
    } else if (s?.proc && !this.locals.has(vmId)) {
      // The shadow QEMU died (typically while loading the device state): say so, not NOT_FOUND.
      throw new FailedPreconditionError(`vm '${vmId}': the shadow QEMU (pid ${s.proc.pid}) exited: ${s.proc.stderr.trim().slice(-500) || 'no stderr'}`);
    }
    const vm = this.local(vmId);
    await resumeGuest(vm.proc.qmp);
    return performance.now() - t0;
  }

  /** Source side, guest paused: device state only to `uri` (a shadow QEMU's incoming address). */
  migrateDeviceState(vmId: string, uri: string, timeoutMs: number): Promise<DeviceStateMigrationResult> {
    requireMigrationUri(uri);
    return this.locks.run(this.requireVmId(vmId), async () => {
      const vm = this.local(vmId);
      return migrateDeviceState(vm.proc.qmp, uri, timeoutMs || this.d.config.deviceStateTimeoutMs);
    });
  }

  /** Source side, guest paused: a device-state migration to `uri` started and held before its device state (see switchOut). */
  private startHeldMigration(vmId: string, uri: string, timeoutMs: number): Promise<HeldDeviceStateMigration> {
    return this.locks.run(vmId, () => startHeldDeviceStateMigration(this.local(vmId).proc.qmp, uri, timeoutMs));
  }

  /**
   * The source half of a switchover in one call: pause, the final memory flush (`flush`, the
   * replication module's), then the device state to `uri` (its migration set up during the flush
   * and held until it succeeded); each step starts only when the one before succeeded, exactly as
   * the coordinator would have called them one by one, but without a
   * coordinator round trip between them while the guest is paused. A step that fails ends the
   * call with `failedStep` (the guest stays paused; the caller rolls back). Bad arguments are
   * refused before anything is paused.
   */
  async switchOut(vmId: string, uri: string, opts: SwitchOutMemory & { flushTimeoutMs: number; deviceStateTimeoutMs: number }): Promise<SwitchOutResult> {
    this.requireVmId(vmId);
    requireMigrationUri(uri);
    this.local(vmId); // NOT_FOUND before anything is paused
    const out: SwitchOutResult = { pauseMs: 0 };
    this.switchingOut.add(vmId);
    let step: SwitchOutStep = 'pause-source';
    let t = performance.now();
    try {
      // The migration capabilities are set while the guest still runs (not a round trip inside
      // its pause); the device-state step then skips them and the status question.
      const capabilities = this.local(vmId).proc.qmp.migrateSetCapabilities({ ...HELD_DEVICE_STATE_CAPABILITIES });
      capabilities.catch(() => undefined);
      if (opts.quiesce) {
        // Best effort: a replication that cannot drain in time is flushed as it is.
        const q = await opts.quiesce(vmId, QUIESCE_MAX_MS).catch(() => undefined);
        out.quiesceMs = performance.now() - t;
        if (q && !q.drained) this.d.log.warn({ vmId, waitedMs: Math.round(q.waitedMs) }, 'replication not drained before the pause');
        t = performance.now();
      }
      await capabilities;
      out.pauseMs = await this.pause(vmId);
      const pausedAtMs = Date.now();
      out.pausedAtMs = pausedAtMs;
      step = 'flush-memory';
      t = performance.now();
      // The device-state migration connects and sets up beside the flush, held by QEMU before any
      // device state leaves until the flush is acknowledged (see startHeldDeviceStateMigration).
      const held = settle(this.startHeldMigration(vmId, uri, opts.flushTimeoutMs + opts.deviceStateTimeoutMs));
      let f: { finalEpoch: number };
      try {
        f = await opts.flush(vmId, opts.flushTimeoutMs);
      } catch (err) {
        const h = await held;
        if (h.ok) await h.value.cancel();
        throw err;
      }
      out.flushMs = performance.now() - t;
      out.finalEpoch = f.finalEpoch;
      const flushedAtMs = Date.now();
      step = 'migrate-device-state';
      t = performance.now();
      const migration = await unsettle(held);
      out.migration = await this.locks.run(vmId, () => migration.proceed());
      this.d.log.info({ vmId, pausedAtMs, flushedAtMs, deviceStateSentAtMs: Date.now() }, 'switched out');
    } catch (err) {
      out.failedStep = step;
      out.failedMs = performance.now() - t;
      out.error = errorMessage(err);
      // Whoever waits to move the address after the pause must not wait for one that will not come.
    } finally {
      this.switchingOut.delete(vmId);
    }
    // The address waits for the whole switch-out, not just the pause: removing and handing it over
    // right at the pause ran on this agent alongside the final flush and the device state (the
    // guest's pause), and the destination needs the load's end before the guest answers anyway.
    // A switch-out that failed keeps it here: the rollback resumes the guest on this host.
    this.settlePauseWaiters(vmId, out.error === undefined ? undefined : new FailedPreconditionError(`vm '${vmId}': the switch-out failed at ${out.failedStep}: ${out.error}`));
    return out;
  }

  /**
   * The tap of `vmId`'s NIC with MAC `mac` on this host, from what the agent launched or attached:
   * the local QEMU's (a promoted shadow's is its shadow tap), else the shadow QEMU's own tap.
   * Synchronous (no QMP), for the IP switch on the switchover path.
   */
  nicTap(vmId: string, mac: string): { tap: string; role: VmRole } | undefined {
    const m = mac.toLowerCase();
    const nic = this.locals.get(vmId)?.def?.nics.find((n) => n.mac === m);
    if (nic) return { tap: nic.tapName, role: 'local' };
    const s = this.shadows.get(vmId);
    const sn = s?.sourceDef.nics.find((n) => n.mac === m);
    return s && sn ? { tap: s.tapNames[sn.netdevId], role: 'shadow' } : undefined;
  }

  async query(vmId: string, role?: VmRole): Promise<VmView> {
    this.requireVmId(vmId);
    const l = this.locals.get(vmId);
    const s = this.shadows.get(vmId);
    if (role !== 'shadow' && l) return this.viewLocal(l);
    if (role !== 'local' && s) return this.viewShadow(s);
    throw new NotFoundError(role ? `${role} vm` : 'vm', vmId);
  }

  async list(): Promise<VmView[]> {
    const out = [
      ...(await Promise.all([...this.locals.values()].map((l) => this.viewLocal(l)))),
      ...(await Promise.all([...this.shadows.values()].map((s) => this.viewShadow(s)))),
    ];
    return out.sort((a, b) => a.vmId.localeCompare(b.vmId) || a.role.localeCompare(b.role));
  }

  private async status(proc: QemuProcess | undefined): Promise<{ status: string; running: boolean }> {
    if (!proc || !proc.running) return { status: 'exited', running: false };
    try {
      const st = await Promise.race([
        proc.qmp.queryStatus(),
        new Promise<never>((_, rej) => setTimeout(() => rej(new UnavailableError('QMP status timed out')), STATUS_TIMEOUT_MS).unref()),
      ]);
      return { status: st.status, running: st.running };
    } catch (err) {
      return { status: `unknown (${errorMessage(err)})`, running: false };
    }
  }

  private async viewLocal(l: LocalVm): Promise<VmView> {
    const st = await this.status(l.proc);
    return { vmId: l.vmId, role: 'local', ...st, pid: l.proc.pid, memoryBytes: l.def?.memorySizeBytes ?? 0, definition: l.def, incomingUri: '', ramPath: '', relaunches: 0, lastError: '' };
  }

  private async viewShadow(s: ShadowVm): Promise<VmView> {
    const st = !s.proc && s.launching ? { status: 'launching', running: false } : await this.status(s.proc);
    return {
      vmId: s.vmId,
      role: 'shadow',
      ...st,
      pid: s.proc?.pid ?? 0,
      memoryBytes: s.sourceDef.memorySizeBytes,
      definition: s.sourceDef,
      incomingUri: s.incomingUri,
      ramPath: s.ramPath,
      relaunches: s.relaunches,
      lastError: s.lastError,
    };
  }

  /** Relaunches shadow QEMUs that died (unless a migration stream had reached them). */
  private async supervise(): Promise<void> {
    for (const s of [...this.shadows.values()]) {
      if (this.closed) return;
      await this.locks.run(s.vmId, async () => {
        if (this.shadows.get(s.vmId) !== s || s.loaded) return;
        if (s.proc?.running) {
          const info = await s.proc.qmp.queryMigrate().catch(() => undefined);
          if (info && info.status && info.status !== 'none' && info.status !== 'setup') s.loaded = info.status !== 'failed';
          if (info?.status !== 'failed') return;
        }
        s.relaunches++;
        const stderr = s.proc?.stderr.trim().slice(-500);
        this.d.log.warn({ vmId: s.vmId, relaunches: s.relaunches, pid: s.proc?.pid, running: s.proc?.running, stderr }, 'shadow VM gone: relaunching');
        await this.dropShadow(s, false);
        await this.launchShadow(s).catch((err) => this.d.log.error({ vmId: s.vmId, err: errorMessage(err) }, 'shadow VM relaunch failed'));
      });
    }
  }

  /** Stops supervision and the shadow QEMUs; local VMs keep running (they are the guests). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    for (const s of this.shadows.values()) await this.dropShadow(s, false);
    for (const l of this.locals.values()) l.proc.close();
    // Not left behind: a restarted agent would find two QEMUs of the VM.
    const replaced = [...this.replaced];
    this.replaced.clear();
    await Promise.all(replaced.map((p) => p.stop(STOP_GRACE_MS).catch(() => undefined)));
  }
}

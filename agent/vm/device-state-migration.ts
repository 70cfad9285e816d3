// The QEMU half of a switchover: launch a shadow QEMU that waits for an incoming migration on
// RAM that is already in place, and move only device state to it from the paused source
// (capability x-ignore-shared on both sides, so shared guest RAM never crosses the wire).
import { FailedPreconditionError, UmbraError } from '../../shared/errors';
import type { QmpClient } from './qmp-client';
import { QmpTimeoutError } from './qmp-errors';
import { DEFAULT_QMP_READY_TIMEOUT_MS, launchQemu, type LaunchQemuOptions, type QemuProcess } from './qemu-process';
import type { QmpMigrationInfo } from './qmp-types';

export const DEFAULT_DEVICE_STATE_TIMEOUT_MS = 10000;
/**
 * Capabilities both sides must agree on before the stream starts. pause-before-switchover is the
 * source's alone, off here: a source left with it on by a held migration would otherwise hold
 * this one too.
 */
export const DEVICE_STATE_CAPABILITIES = { 'x-ignore-shared': true, events: true, 'pause-before-switchover': false } as const;
/** The source's capabilities for a held migration (startHeldDeviceStateMigration). */
export const HELD_DEVICE_STATE_CAPABILITIES = { ...DEVICE_STATE_CAPABILITIES, 'pause-before-switchover': true } as const;
const TERMINAL_STATES = new Set(['completed', 'failed', 'cancelled']);
/** Where a held migration stops (or ends early). */
const HELD_OR_ENDED = new Set(['pre-switchover', ...TERMINAL_STATES]);
const GIB = 1024 * 1024 * 1024;
/** Extra wait for a prefaulting shadow QEMU's QMP, per GiB of guest RAM. */
export const PREFAULT_READY_MS_PER_GIB = 30000;

/** The migration stream failed or was cancelled; the source is still paused and intact. */
export class DeviceStateMigrationError extends UmbraError {
  readonly status: string;
  constructor(status: string, desc: string | undefined) {
    super('ABORTED', `device-state migration ${status}${desc ? `: ${desc}` : ''}`);
    this.name = 'DeviceStateMigrationError';
    this.status = status;
  }
}

export interface ShadowLaunchOptions extends Omit<LaunchQemuOptions, 'args'> {
  /** Shadow image holding the guest's RAM (memory-backend-file, share=on). */
  ramFile: string;
  /** The shadow host's own taps, by netdev id. */
  tapNames?: Record<string, string>;
  qmpSocketPath: string;
  serialLogPath: string;
  /** Where the shadow listens for the source, e.g. unix:/run/umbra/g1.mig or tcp:10.0.0.2:49152. */
  incomingUri: string;
  /** Map all of the image into the shadow QEMU at launch (see QemuArgsOptions.prefaultRam); default true. */
  prefaultRam?: boolean;
}

/**
 * Starts a shadow QEMU: same definition, RAM on the shadow image, `-incoming defer` and `-S`,
 * then sets the capabilities and starts listening. It uses no CPU until the switchover, and
 * after it the guest stays paused until resumeGuest() (an explicit, journaled step).
 */
export async function launchShadowQemu(options: ShadowLaunchOptions): Promise<QemuProcess> {
  const { ramFile, tapNames, qmpSocketPath, serialLogPath, incomingUri, prefaultRam = true, ...launch } = options;
  // QEMU maps the image before it serves QMP; over holes of a sparse image that means allocating
  // them (2 GiB took over 20 s on a loaded test machine), so the wait for QMP grows with the size.
  if (prefaultRam && launch.qmpReadyTimeoutMs === undefined) {
    launch.qmpReadyTimeoutMs = DEFAULT_QMP_READY_TIMEOUT_MS + Math.ceil(launch.def.memorySizeBytes / GIB) * PREFAULT_READY_MS_PER_GIB;
  }
  const proc = await launchQemu({ ...launch, args: { incoming: 'defer', startPaused: true, ramFile, tapNames, qmpSocketPath, serialLogPath, prefaultRam } });
  try {
    await proc.qmp.migrateSetCapabilities({ ...DEVICE_STATE_CAPABILITIES });
    await proc.qmp.migrateIncoming(incomingUri);
  } catch (err) {
    await proc.kill();
    throw err;
  }
  return proc;
}

export interface DeviceStateMigrationResult {
  /** From the migrate command to QEMU reporting completion, as seen here. */
  elapsedMs: number;
  /** QEMU's own figures. */
  totalTimeMs?: number;
  downtimeMs?: number;
  /** RAM bytes QEMU sent (non-shared blocks only: ROMs, video memory); device state is extra. */
  ramTransferredBytes: number;
}

/**
 * Source side. Precondition: the guest is paused (QMP stop) and its RAM is already complete at
 * the destination. On failure or timeout the migration is cancelled and the source stays paused.
 */
export async function migrateDeviceState(
  source: QmpClient,
  uri: string,
  timeoutMs = DEFAULT_DEVICE_STATE_TIMEOUT_MS,
): Promise<DeviceStateMigrationResult> {
  // Both asked at once (one round trip less in the pause): setting capabilities touches no
  // running migration, so doing it before the status check costs nothing when the check refuses.
  const [status] = await Promise.all([source.queryStatus(), source.migrateSetCapabilities({ ...DEVICE_STATE_CAPABILITIES })]);
  if (status.running) throw new FailedPreconditionError(`source guest is ${status.status}; stop it before a device-state migration`);
  const started = performance.now();
  const done = source.waitForEvent('MIGRATION', timeoutMs, (ev) => TERMINAL_STATES.has(String(ev.data.status)));
  done.catch(() => undefined);
  let info: QmpMigrationInfo;
  try {
    await source.migrate(uri);
    await done;
    // One read: the guest is paused, so no waiting for QEMU's figures here (they may read 0;
    // queryFinishedMigration() gets them afterwards when they matter).
    info = await source.queryMigrate();
  } catch (err) {
    await source.migrateCancel().catch(() => undefined);
    if (err instanceof QmpTimeoutError) throw new DeviceStateMigrationError('timed out', `no completion within ${timeoutMs} ms`);
    throw err;
  }
  const elapsedMs = performance.now() - started;
  if (info.status !== 'completed') throw new DeviceStateMigrationError(info.status ?? 'unknown', info['error-desc']);
  return { elapsedMs, totalTimeMs: info['total-time'], downtimeMs: info.downtime, ramTransferredBytes: info.ram?.transferred ?? 0 };
}

/** A device-state migration connected and set up, held by QEMU before any device state leaves. */
export interface HeldDeviceStateMigration {
  /**
   * Sends the device state (the guest's RAM must be complete at the destination by now) and
   * resolves once QEMU reports completion; `elapsedMs` counts from this call. On failure the
   * migration is cancelled and the source stays paused (postmigrate).
   */
  proceed(): Promise<DeviceStateMigrationResult>;
  /** Gives up before any device state left: the source stays paused; the destination's stream ends. */
  cancel(): Promise<void>;
}

/**
 * Source side, guest paused by the caller, capabilities HELD_DEVICE_STATE_CAPABILITIES set: starts
 * the device-state migration now, while the final memory flush still runs. QEMU connects, sends its
 * header and the small non-shared RAM blocks (ROMs), then waits in `pre-switchover`
 * (pause-before-switchover) until proceed(): that set-up (6-10 ms in the lab) is then not inside
 * the guest's pause after the flush, and no device state reaches the destination before its RAM
 * is complete (virtio's load reads the rings' indexes from guest RAM). The guest was paused before
 * the migration began, so QEMU does not resume it on a failure or cancel: the caller decides.
 * `timeoutMs` bounds the whole of it, the hold included.
 */
export async function startHeldDeviceStateMigration(source: QmpClient, uri: string, timeoutMs = DEFAULT_DEVICE_STATE_TIMEOUT_MS): Promise<HeldDeviceStateMigration> {
  const held = source.waitForEvent('MIGRATION', timeoutMs, (ev) => HELD_OR_ENDED.has(String(ev.data.status)));
  const done = source.waitForEvent('MIGRATION', timeoutMs, (ev) => TERMINAL_STATES.has(String(ev.data.status)));
  held.catch(() => undefined);
  done.catch(() => undefined);
  await source.migrate(uri);
  const cancel = () => source.migrateCancel().catch(() => undefined);
  return {
    cancel,
    async proceed() {
      const started = performance.now();
      let info: QmpMigrationInfo;
      try {
        const ev = await held;
        if (ev.data.status !== 'pre-switchover') {
          const failed = await source.queryMigrate().catch(() => undefined);
          throw new DeviceStateMigrationError(String(ev.data.status), failed?.['error-desc'] ?? 'before the device state was sent');
        }
        await source.migrateContinue('pre-switchover');
        await done;
        info = await source.queryMigrate();
      } catch (err) {
        await cancel();
        if (err instanceof QmpTimeoutError) throw new DeviceStateMigrationError('timed out', `no completion within ${timeoutMs} ms`);
        throw err;
      }
      const elapsedMs = performance.now() - started;
      if (info.status !== 'completed') throw new DeviceStateMigrationError(info.status ?? 'unknown', info['error-desc']);
      return { elapsedMs, totalTimeMs: info['total-time'], downtimeMs: info.downtime, ramTransferredBytes: info.ram?.transferred ?? 0 };
    },
  };
}

/** How long QEMU may take to fill in its figures after announcing completion. */
const FIGURES_SETTLE_MS = 200;

/**
 * query-migrate once the migration has ended. QEMU emits the `completed` event before it
 * computes total-time and downtime, so an immediate query can read zeros: wait (briefly) for them.
 */
export async function queryFinishedMigration(qmp: QmpClient, settleMs = FIGURES_SETTLE_MS): Promise<QmpMigrationInfo> {
  const deadline = performance.now() + settleMs;
  for (;;) {
    const info = await qmp.queryMigrate();
    if (info.status !== 'completed' || (info['total-time'] ?? 0) > 0 || performance.now() > deadline) return info;
    await new Promise((r) => setTimeout(r, 2));
  }
}

/**
 * Destination side: waits until the incoming stream has been loaded (guest paused, ready). The
 * MIGRATION event (the shadow has the events capability) ends the wait as soon as QEMU finishes
 * loading, which is some milliseconds after the source reports completion, with no question after
 * it; without the event, query-migrate is asked again every `pollMs`. `signal` ends the wait (at the
 * next poll) with a DeviceStateMigrationError. Says how the end was seen and after how many questions.
 */
export async function waitIncomingLoaded(
  destination: QmpClient,
  timeoutMs = DEFAULT_DEVICE_STATE_TIMEOUT_MS,
  pollMs = 5,
  signal?: AbortSignal,
): Promise<{ completedAtMs?: number; seenBy: 'event' | 'query'; queries: number }> {
  const deadline = performance.now() + timeoutMs;
  let completedAtMs: number | undefined;
  let queries = 0;
  for (;;) {
    if (signal?.aborted) throw new DeviceStateMigrationError('wait cancelled', String(signal.reason ?? ''));
    // Listening before asking, so an end between the answer and the wait is not missed.
    const ended = destination.waitForEvent('MIGRATION', Math.max(1, Math.min(pollMs, deadline - performance.now())), (ev) => TERMINAL_STATES.has(String(ev.data.status)));
    ended.then((ev) => (completedAtMs ??= ev.timestampMs), () => undefined);
    const info = await destination.queryMigrate();
    queries++;
    // QEMU's own time of the end (the event's timestamp), when the event said so.
    if (info.status === 'completed') return { completedAtMs, seenBy: 'query', queries };
    if (info.status === 'failed' || info.status === 'cancelled') throw new DeviceStateMigrationError(info.status, info['error-desc']);
    if (performance.now() > deadline) throw new DeviceStateMigrationError('timed out', `destination still ${info.status ?? 'waiting'} after ${timeoutMs} ms`);
    const ev = await ended.catch((err) => {
      if (!(err instanceof QmpTimeoutError)) throw err;
      return undefined;
    });
    // The event says completed: done, without asking again (one QMP round trip less inside the
    // guest's pause). A failure is asked about, for QEMU's error description.
    if (ev?.data.status === 'completed') return { completedAtMs: ev.timestampMs, seenBy: 'event', queries };
  }
}

/**
 * Runs the guest on this QEMU and returns once QEMU confirms it is running. `knownPaused` (the
 * caller has just seen the incoming migration completed, so the guest is paused) skips the status
 * question: one QMP round trip less in the guest's pause (only a caller that knows: a cont of a
 * running guest emits no RESUME event, and this would wait for one until `timeoutMs`).
 */
export async function resumeGuest(qmp: QmpClient, timeoutMs = DEFAULT_DEVICE_STATE_TIMEOUT_MS, knownPaused = false): Promise<void> {
  if (!knownPaused && (await qmp.queryStatus()).running) return;
  const resumed = qmp.waitForEvent('RESUME', timeoutMs);
  resumed.catch(() => undefined);
  await qmp.cont();
  await resumed;
}

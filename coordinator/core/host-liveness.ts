// Pure liveness rules: a host's state follows from the time since its last heartbeat, and a host
// restored from the store after a coordinator restart is not judged until the restart grace ends.

import type { HostState } from '../../shared/host-types';

export interface LivenessTimeouts {
  /** No heartbeat for longer than this: SUSPECT. */
  suspectAfterMs: number;
  /** No heartbeat for longer than this: DOWN. */
  downAfterMs: number;
  /**
   * After a coordinator (re)start, how long hosts restored from the store and not heard from since
   * keep their stored state without a verdict (their agents back off while we were down). A host
   * still silent when it ends is SUSPECT, and DOWN `downAfterMs - suspectAfterMs` later.
   * Default 0: no grace, restored hosts are SUSPECT until heard from.
   */
  restartGraceMs?: number;
}

export function livenessState(lastHeartbeatMs: number, nowMs: number, t: LivenessTimeouts): HostState {
  const silentMs = nowMs - lastHeartbeatMs;
  if (silentMs > t.downAfterMs) return 'HOST_STATE_DOWN';
  if (silentMs > t.suspectAfterMs) return 'HOST_STATE_SUSPECT';
  return 'HOST_STATE_UP';
}

const SEVERITY: Record<HostState, number> = { HOST_STATE_UP: 0, HOST_STATE_SUSPECT: 1, HOST_STATE_DOWN: 2 };

/**
 * The state of a host restored from the store and not heard from since the coordinator started at
 * `startedAtMs`: undefined while the restart grace lasts (no verdict: it keeps `stored`), then
 * SUSPECT, then DOWN once `downAfterMs - suspectAfterMs` more have passed. Never better than
 * `stored`: only a heartbeat or a registration brings a host back up.
 */
export function restoredHostState(stored: HostState, startedAtMs: number, nowMs: number, t: LivenessTimeouts): HostState | undefined {
  const graceEndMs = startedAtMs + (t.restartGraceMs ?? 0);
  if (nowMs < graceEndMs) return undefined;
  const verdict: HostState = nowMs - graceEndMs >= t.downAfterMs - t.suspectAfterMs ? 'HOST_STATE_DOWN' : 'HOST_STATE_SUSPECT';
  return SEVERITY[verdict] > SEVERITY[stored] ? verdict : stored;
}

// Pure liveness rule: a host's state follows from the time since its last heartbeat.

import type { HostState } from '../../shared/host-types';

export interface LivenessTimeouts {
  /** No heartbeat for longer than this: SUSPECT. */
  suspectAfterMs: number;
  /** No heartbeat for longer than this: DOWN. */
  downAfterMs: number;
}

export function livenessState(lastHeartbeatMs: number, nowMs: number, t: LivenessTimeouts): HostState {
  const silentMs = nowMs - lastHeartbeatMs;
  if (silentMs > t.downAfterMs) return 'HOST_STATE_DOWN';
  if (silentMs > t.suspectAfterMs) return 'HOST_STATE_SUSPECT';
  return 'HOST_STATE_UP';
}

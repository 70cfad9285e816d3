// The record of one IP switchover (kept in the store and summarised in the audit log).
export type SwitchoverStatus = 'SUCCEEDED' | 'ROLLED_BACK' | 'FAILED';

export interface SwitchoverStep {
  step: string;
  host_id: string;
  duration_ms: number;
  ok: boolean;
  error: string;
}

export interface SwitchoverEvent {
  id: string;
  timestamp_unix_ms: number;
  vm_id: string;
  source_host: string;
  destination_host: string;
  status: SwitchoverStatus;
  fencing_token: number;
  steps: SwitchoverStep[];
  total_ms: number;
  error: string;
  /** VM switchovers: source pause to destination running, from the agents' clocks (see the proto). */
  guest_paused_ms?: number;
}

/** "deactivate@a=1.20ms ok, activate@b=2.31ms ok" for the audit log. */
export function formatSteps(steps: readonly SwitchoverStep[]): string {
  return steps.map((s) => `${s.step}@${s.host_id}=${s.duration_ms.toFixed(2)}ms ${s.ok ? 'ok' : `failed: ${s.error}`}`).join(', ');
}

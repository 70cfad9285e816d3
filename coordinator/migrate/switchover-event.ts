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

/** The part_of audit attribute of an IP switchover run as a step of a VM switchover. */
export const PART_OF_VM_SWITCHOVER = 'vm_switchover';

/** Where a VM went, or failed to go, as an audit entry tells it. */
export interface AuditedMigration {
  vmId: string;
  sourceHostId: string;
  destinationHostId: string;
  ok: boolean;
  /** Why it did not succeed. */
  error?: string;
}

/**
 * The migration an audit entry records: a switchover's (SWITCHOVER, or ALERT for a failed one)
 * with its hosts and status. Undefined for other entries and for the IP switch inside a VM
 * switchover, whose own entry follows: counting both would count one migration twice.
 */
export function auditedMigration(e: { kind: string; vm_id: string; message: string; attributes: Readonly<Record<string, string>> }): AuditedMigration | undefined {
  if (e.kind !== 'EVENT_KIND_SWITCHOVER' && e.kind !== 'EVENT_KIND_ALERT') return undefined;
  const a = e.attributes;
  if (!a.status || !a.source_host || !a.destination_host || !e.vm_id || a.part_of === PART_OF_VM_SWITCHOVER) return undefined;
  const ok = a.status === 'SUCCEEDED';
  return { vmId: e.vm_id, sourceHostId: a.source_host, destinationHostId: a.destination_host, ok, ...(ok ? {} : { error: e.message }) };
}

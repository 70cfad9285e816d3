// VmAgentPort over each agent's VmService (dialled pinned to the agent's identity).
import { NotFoundError } from '../../shared/errors';
import { callUnary } from '../../shared/grpc-client';
import type { AgentClients } from '../clients/agent-clients';
import type { SwitchOutOutcome, VmAgentPort, VmInfo } from './switchover-ports';

export const AGENT_VM_SERVICE = 'umbra.agent.v1.VmService';
const CALL_DEADLINE_MS = 5_000;
/** A shadow launch waits for QEMU's QMP socket (slow under TCG on a busy host). */
const PREPARE_DEADLINE_MS = 30_000;
const MIGRATE_DEADLINE_MARGIN_MS = 5_000;

type WireVm = { vm_id: string; role: string; status: string; running: boolean; definition_json: string; incoming_uri: string };

function fromWire(v: WireVm): VmInfo {
  return { vmId: v.vm_id, role: v.role === 'VM_ROLE_SHADOW' ? 'shadow' : 'local', status: v.status, running: v.running, definitionJson: v.definition_json, incomingUri: v.incoming_uri };
}

export class GrpcVmAgentPort implements VmAgentPort {
  constructor(private readonly agents: AgentClients) {}

  private client(hostId: string) {
    return this.agents.get(hostId, AGENT_VM_SERVICE);
  }

  async query(hostId: string, vmId: string, role?: 'local' | 'shadow'): Promise<VmInfo | undefined> {
    const wireRole = role === 'local' ? 'VM_ROLE_LOCAL' : role === 'shadow' ? 'VM_ROLE_SHADOW' : 'VM_ROLE_UNSPECIFIED';
    try {
      const res = await callUnary<{ vm: WireVm }>(this.client(hostId), 'QueryVm', { vm_id: vmId, role: wireRole }, CALL_DEADLINE_MS);
      return fromWire(res.vm);
    } catch (err) {
      if (err instanceof NotFoundError || (err as { reason?: string }).reason === 'NOT_FOUND') return undefined;
      throw err;
    }
  }

  async list(hostId: string): Promise<VmInfo[]> {
    const res = await callUnary<{ vms: WireVm[] }>(this.client(hostId), 'ListVms', {}, CALL_DEADLINE_MS);
    return res.vms.map(fromWire);
  }

  async prepareShadow(hostId: string, vmId: string, definitionJson: string): Promise<VmInfo> {
    const res = await callUnary<{ vm: WireVm }>(this.client(hostId), 'PrepareShadowVm', { vm_id: vmId, definition_json: definitionJson }, PREPARE_DEADLINE_MS);
    return fromWire(res.vm);
  }

  async removeShadow(hostId: string, vmId: string): Promise<boolean> {
    return (await callUnary<{ removed: boolean }>(this.client(hostId), 'RemoveShadowVm', { vm_id: vmId }, PREPARE_DEADLINE_MS)).removed;
  }

  async pause(hostId: string, vmId: string): Promise<number> {
    return (await callUnary<{ duration_ms: number }>(this.client(hostId), 'PauseVm', { vm_id: vmId }, CALL_DEADLINE_MS)).duration_ms;
  }

  async resume(hostId: string, vmId: string): Promise<number> {
    return (await callUnary<{ duration_ms: number }>(this.client(hostId), 'ResumeVm', { vm_id: vmId }, CALL_DEADLINE_MS)).duration_ms;
  }

  async resumeWhenLoaded(hostId: string, vmId: string, timeoutMs: number): Promise<{ durationMs: number; waitedMs: number; runningAtUnixMs?: number }> {
    const res = await callUnary<{ duration_ms: number; waited_ms: number; running_at_unix_ms: number }>(this.client(hostId), 'ResumeVmWhenLoaded', { vm_id: vmId, timeout_ms: timeoutMs }, timeoutMs + CALL_DEADLINE_MS);
    return { durationMs: res.duration_ms, waitedMs: res.waited_ms, ...(res.running_at_unix_ms ? { runningAtUnixMs: res.running_at_unix_ms } : {}) };
  }

  async migrateDeviceState(hostId: string, vmId: string, destinationUri: string, timeoutMs: number) {
    const res = await callUnary<{ duration_ms: number; qemu_downtime_ms: number; ram_transferred_bytes: string }>(
      this.client(hostId),
      'MigrateDeviceState',
      { vm_id: vmId, destination_uri: destinationUri, timeout_ms: timeoutMs },
      timeoutMs + MIGRATE_DEADLINE_MARGIN_MS,
    );
    return { durationMs: res.duration_ms, downtimeMs: res.qemu_downtime_ms, ramTransferredBytes: Number(res.ram_transferred_bytes) };
  }

  async switchOut(hostId: string, vmId: string, destinationUri: string, opts: { flushTimeoutMs: number; deviceStateTimeoutMs: number; destinationHost?: string }): Promise<SwitchOutOutcome> {
    const res = await callUnary<{
      pause_ms: number;
      flush_ms: number;
      final_epoch: string;
      migrate_ms: number;
      qemu_downtime_ms: number;
      ram_transferred_bytes: string;
      failed_step: string;
      failed_ms: number;
      error: string;
      quiesce_ms: number;
      paused_at_unix_ms: number;
    }>(
      this.client(hostId),
      'SwitchOutVm',
      { vm_id: vmId, destination_uri: destinationUri, timeout_ms: opts.deviceStateTimeoutMs, flush_timeout_ms: opts.flushTimeoutMs, destination_host: opts.destinationHost ?? '' },
      opts.flushTimeoutMs + opts.deviceStateTimeoutMs + CALL_DEADLINE_MS + MIGRATE_DEADLINE_MARGIN_MS,
    );
    const failed = res.failed_step;
    return {
      pauseMs: res.pause_ms,
      flushMs: res.flush_ms,
      finalEpoch: Number(res.final_epoch),
      migrateMs: res.migrate_ms,
      qemuDowntimeMs: res.qemu_downtime_ms,
      ramTransferredBytes: Number(res.ram_transferred_bytes),
      failedStep: failed === 'pause-source' || failed === 'flush-memory' || failed === 'migrate-device-state' ? failed : undefined,
      failedMs: res.failed_ms,
      error: res.error,
      quiesceMs: res.quiesce_ms,
      ...(res.paused_at_unix_ms ? { pausedAtUnixMs: res.paused_at_unix_ms } : {}),
    };
  }
}

// MemoryAgentPort over each source agent's ReplicationControlService (dialled pinned to its identity).
import { callUnary } from '../../shared/grpc-client';
import type { AgentClients } from '../clients/agent-clients';
import type { AgentSourceStatus, MemoryAgentPort, ShadowTargetEndpoint } from './memory-agent-port';

export const AGENT_REPLICATION_CONTROL_SERVICE = 'umbra.agent.v1.ReplicationControlService';
/** Starting opens the guest's RAM and starts a tracker: quick, but not instant. */
const START_DEADLINE_MS = 15_000;
const CALL_DEADLINE_MS = 5_000;
/** Added to a flush's own timeout, so the agent's answer (even a failure) arrives before ours expires. */
const FLUSH_DEADLINE_MARGIN_MS = 5_000;

export class GrpcMemoryAgentPort implements MemoryAgentPort {
  constructor(private readonly agents: AgentClients) {}

  private client(hostId: string) {
    return this.agents.get(hostId, AGENT_REPLICATION_CONTROL_SERVICE);
  }

  async start(sourceHost: string, vmId: string, shadows: ShadowTargetEndpoint[]): Promise<AgentSourceStatus> {
    const res = await callUnary<{ status: AgentSourceStatus }>(this.client(sourceHost), 'StartReplication', { vm_id: vmId, shadows }, START_DEADLINE_MS);
    return res.status;
  }

  async stop(sourceHost: string, vmId: string): Promise<boolean> {
    const res = await callUnary<{ stopped: boolean }>(this.client(sourceHost), 'StopReplication', { vm_id: vmId }, CALL_DEADLINE_MS);
    return res.stopped;
  }

  async flush(sourceHost: string, vmId: string, timeoutMs: number): Promise<{ finalEpoch: number; flushMs: number }> {
    const res = await callUnary<{ final_epoch: string; flush_ms: number }>(
      this.client(sourceHost),
      'FlushReplication',
      { vm_id: vmId, timeout_ms: timeoutMs },
      timeoutMs + FLUSH_DEADLINE_MARGIN_MS,
    );
    return { finalEpoch: Number(res.final_epoch), flushMs: res.flush_ms };
  }

  async resume(sourceHost: string, vmId: string): Promise<void> {
    await callUnary(this.client(sourceHost), 'ResumeReplication', { vm_id: vmId }, CALL_DEADLINE_MS);
  }

  async resyncShadow(sourceHost: string, vmId: string, hostId: string, reason: string): Promise<AgentSourceStatus> {
    const res = await callUnary<{ status: AgentSourceStatus }>(this.client(sourceHost), 'ResyncShadow', { vm_id: vmId, host_id: hostId, reason }, CALL_DEADLINE_MS);
    return res.status;
  }

  async status(sourceHost: string, vmId: string): Promise<AgentSourceStatus | undefined> {
    const res = await callUnary<{ sources: AgentSourceStatus[] }>(this.client(sourceHost), 'GetReplicationStatus', { vm_id: vmId }, CALL_DEADLINE_MS);
    return res.sources.find((s) => s.vm_id === vmId);
  }
}

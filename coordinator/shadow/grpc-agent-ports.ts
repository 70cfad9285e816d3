// ShadowAgentPort and IpAgentPort over each agent's IpShadowService (dialled pinned to the agent's identity).
import { callUnary } from '../../shared/grpc-client';
import { configToWire, type VmIpConfig } from '../../shared/vm-ip-config';
import type { AgentClients } from '../clients/agent-clients';
import type { IpAgentPort } from '../migrate/ip-agent-port';
import type { ShadowAgentPort } from './shadow-manager';

export const AGENT_IP_SHADOW_SERVICE = 'umbra.agent.v1.IpShadowService';
const PUSH_DEADLINE_MS = 5000;
/** Activation waits for the first announcement frame only; a few seconds is a dead agent. */
const APPLY_DEADLINE_MS = 3000;

export class GrpcAgentPorts implements ShadowAgentPort, IpAgentPort {
  constructor(private readonly agents: AgentClients) {}

  private client(hostId: string) {
    return this.agents.get(hostId, AGENT_IP_SHADOW_SERVICE);
  }

  async putShadow(hostId: string, sourceHost: string, config: VmIpConfig, version: number): Promise<number> {
    const res = await callUnary<{ shadow: { version: string } }>(
      this.client(hostId),
      'PutShadow',
      { source_host: sourceHost, config: configToWire(config), version: String(version) },
      PUSH_DEADLINE_MS,
    );
    return Number(res.shadow.version);
  }

  async removeShadow(hostId: string, vmId: string): Promise<void> {
    await callUnary(this.client(hostId), 'RemoveShadow', { vm_id: vmId }, PUSH_DEADLINE_MS);
  }

  async prepare(hostId: string, config: VmIpConfig, fencingToken: number): Promise<number> {
    const res = await callUnary<{ total_ms: number }>(this.client(hostId), 'PrepareIp', { vm_id: config.vm_id, fencing_token: String(fencingToken), config: configToWire(config) }, APPLY_DEADLINE_MS);
    return res.total_ms;
  }

  async activate(hostId: string, config: VmIpConfig, fencingToken: number): Promise<number> {
    const res = await callUnary<{ total_ms: number }>(this.client(hostId), 'ActivateIp', { vm_id: config.vm_id, fencing_token: String(fencingToken), config: configToWire(config) }, APPLY_DEADLINE_MS);
    return res.total_ms;
  }

  async deactivate(hostId: string, config: VmIpConfig, fencingToken: number): Promise<number> {
    const res = await callUnary<{ total_ms: number }>(this.client(hostId), 'DeactivateIp', { vm_id: config.vm_id, fencing_token: String(fencingToken), config: configToWire(config) }, APPLY_DEADLINE_MS);
    return res.total_ms;
  }

  async state(hostId: string, config: VmIpConfig): Promise<{ active: boolean; fencingToken: number }> {
    const res = await callUnary<{ active: boolean; fencing_token: string }>(this.client(hostId), 'GetIpState', { vm_id: config.vm_id, config: configToWire(config) }, PUSH_DEADLINE_MS);
    return { active: res.active, fencingToken: Number(res.fencing_token) };
  }
}

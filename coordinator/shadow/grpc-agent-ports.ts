// ShadowAgentPort and IpAgentPort over each agent's IpShadowService (dialled pinned to the agent's identity).
import { callUnary } from '../../shared/grpc-client';
import { configToWire, type VmIpConfig } from '../../shared/vm-ip-config';
import type { AgentClients } from '../clients/agent-clients';
import type { DeactivateOptions, HandoverOutcome, IpAgentPort, IpHandoffHosts } from '../migrate/ip-agent-port';
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

  private handoff(h: IpHandoffHosts) {
    return { source_host: h.source, destination_host: h.destination, destination_endpoint: this.agents.endpoint(h.destination), ...(h.datagramKey ? { datagram_key: h.datagramKey } : {}) };
  }

  async prepare(hostId: string, config: VmIpConfig, fencingToken: number, handoff?: IpHandoffHosts): Promise<number> {
    const req = { vm_id: config.vm_id, fencing_token: String(fencingToken), config: configToWire(config), ...(handoff ? { handoff: this.handoff(handoff) } : {}) };
    const res = await callUnary<{ total_ms: number }>(this.client(hostId), 'PrepareIp', req, APPLY_DEADLINE_MS);
    return res.total_ms;
  }

  async deactivateAndHandOver(hosts: IpHandoffHosts, config: VmIpConfig, fencingToken: number, opts: DeactivateOptions = {}): Promise<HandoverOutcome> {
    const wait = opts.afterGuestPausedMs ?? 0;
    const req = { vm_id: config.vm_id, fencing_token: String(fencingToken), config: configToWire(config), handoff: this.handoff(hosts), after_guest_paused_ms: wait };
    // The source's deadline covers its wait for the pause and its own call to the destination.
    const res = await callUnary<{ total_ms: number; handed_over: boolean; destination?: { total_ms: number } | null; handoff_error: string }>(
      this.client(hosts.source), 'DeactivateIp', req, wait + 2 * APPLY_DEADLINE_MS,
    );
    return {
      sourceMs: res.total_ms,
      handedOver: res.handed_over === true,
      ...(res.handed_over && res.destination ? { destinationMs: res.destination.total_ms } : {}),
      ...(res.handed_over ? {} : { error: res.handoff_error || 'the agent did not hand over (it predates hand-overs)' }),
    };
  }

  async activate(hostId: string, config: VmIpConfig, fencingToken: number): Promise<number> {
    const res = await callUnary<{ total_ms: number }>(this.client(hostId), 'ActivateIp', { vm_id: config.vm_id, fencing_token: String(fencingToken), config: configToWire(config) }, APPLY_DEADLINE_MS);
    return res.total_ms;
  }

  async deactivate(hostId: string, config: VmIpConfig, fencingToken: number, opts: DeactivateOptions = {}): Promise<number> {
    const wait = opts.afterGuestPausedMs ?? 0;
    const req = { vm_id: config.vm_id, fencing_token: String(fencingToken), config: configToWire(config), after_guest_paused_ms: wait };
    const res = await callUnary<{ total_ms: number }>(this.client(hostId), 'DeactivateIp', req, wait + APPLY_DEADLINE_MS);
    return res.total_ms;
  }

  async state(hostId: string, config: VmIpConfig): Promise<{ active: boolean; fencingToken: number }> {
    const res = await callUnary<{ active: boolean; fencing_token: string }>(this.client(hostId), 'GetIpState', { vm_id: config.vm_id, config: configToWire(config) }, PUSH_DEADLINE_MS);
    return { active: res.active, fencingToken: Number(res.fencing_token) };
  }
}

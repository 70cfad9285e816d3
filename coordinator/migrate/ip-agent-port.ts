// Port of the agents' IP activation, as the switchover and the reconciliation sweep use it.
import type { VmIpConfig } from '../../shared/vm-ip-config';

export interface IpAgentPort {
  /** Resolves with the agent's own duration of the step in ms. */
  activate(hostId: string, config: VmIpConfig, fencingToken: number): Promise<number>;
  deactivate(hostId: string, config: VmIpConfig, fencingToken: number): Promise<number>;
  state(hostId: string, config: VmIpConfig): Promise<{ active: boolean; fencingToken: number }>;
}

// Port of the agents' IP activation, as the switchover and the reconciliation sweep use it.
import type { VmIpConfig } from '../../shared/vm-ip-config';

export interface IpAgentPort {
  /** Resolves with the agent's own duration of the step in ms. */
  activate(hostId: string, config: VmIpConfig, fencingToken: number): Promise<number>;
  /**
   * Has the agent admit `fencingToken` durably ahead of the activate/deactivate that carries it,
   * so that call writes nothing while the address is in flight; changes no kernel state. Rejects
   * with an UmbraError of reason UNIMPLEMENTED when the agent predates it. Optional: without
   * it, the switchover skips the step.
   */
  prepare?(hostId: string, config: VmIpConfig, fencingToken: number): Promise<number>;
  deactivate(hostId: string, config: VmIpConfig, fencingToken: number): Promise<number>;
  state(hostId: string, config: VmIpConfig): Promise<{ active: boolean; fencingToken: number }>;
}

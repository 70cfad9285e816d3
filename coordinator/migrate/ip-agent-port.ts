// Port of the agents' IP activation, as the switchover and the reconciliation sweep use it.
import type { VmIpConfig } from '../../shared/vm-ip-config';

/** The two hosts of a hand-over (the source calls the destination right after its removal). */
export interface IpHandoffHosts {
  source: string;
  destination: string;
  /** The switchover's one-time key for the hand-over datagram (both agents get it when prepared). */
  datagramKey?: Buffer;
}

export interface HandoverOutcome {
  /** The source's deactivation, ms as the source measured it. */
  sourceMs: number;
  /** True when the destination activated the address on the source's call. */
  handedOver: boolean;
  /** The destination's own duration of the activation, when handed over. */
  destinationMs?: number;
  /** Why the hand-over did not happen (the address is removed from the source all the same). */
  error?: string;
}

/** Options of a switch's source-side removal. */
export interface DeactivateOptions {
  /** The source first waits (up to this long) until its guest of the VM is paused; 0/absent: at once. */
  afterGuestPausedMs?: number;
}

export interface IpAgentPort {
  /** Resolves with the agent's own duration of the step in ms. */
  activate(hostId: string, config: VmIpConfig, fencingToken: number): Promise<number>;
  /**
   * Has the agent admit `fencingToken` durably ahead of the activate/deactivate that carries it,
   * so that call writes nothing while the address is in flight; changes no kernel state. Rejects
   * with an UmbraError of reason UNIMPLEMENTED when the agent predates it. Optional: without
   * it, the switchover skips the step.
   */
  prepare?(hostId: string, config: VmIpConfig, fencingToken: number, handoff?: IpHandoffHosts): Promise<number>;
  /**
   * Deactivates on `hosts.source`, which then activates on `hosts.destination` itself (both must
   * have been prepared with `hosts`): one network hop in the window where no host holds the
   * address, instead of two through the coordinator. Rejects when the deactivation failed; a
   * failed hand-over resolves with handedOver false. Optional, like prepare().
   */
  deactivateAndHandOver?(hosts: IpHandoffHosts, config: VmIpConfig, fencingToken: number, opts?: DeactivateOptions): Promise<HandoverOutcome>;
  deactivate(hostId: string, config: VmIpConfig, fencingToken: number, opts?: DeactivateOptions): Promise<number>;
  state(hostId: string, config: VmIpConfig): Promise<{ active: boolean; fencingToken: number }>;
}

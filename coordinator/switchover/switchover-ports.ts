// Ports of the VM switchover (owned here, faked in tests): the agents' QEMU driver, the memory
// shadows, and the fenced IP switch of the ipshadow module.
import type { SwitchoverEvent } from '../migrate/switchover-event';
import type { PreparedIpSwitch } from '../migrate/ip-switchover';

export interface VmInfo {
  vmId: string;
  role: 'local' | 'shadow';
  status: string;
  running: boolean;
  definitionJson: string;
  incomingUri: string;
}

export interface VmAgentPort {
  /** The VM on `hostId` in `role` (local first when unspecified); undefined when the host has none. */
  query(hostId: string, vmId: string, role?: 'local' | 'shadow'): Promise<VmInfo | undefined>;
  prepareShadow(hostId: string, vmId: string, definitionJson: string): Promise<VmInfo>;
  removeShadow(hostId: string, vmId: string): Promise<boolean>;
  /** Each resolves with the agent's own duration in ms. */
  pause(hostId: string, vmId: string): Promise<number>;
  resume(hostId: string, vmId: string): Promise<number>;
  migrateDeviceState(hostId: string, vmId: string, destinationUri: string, timeoutMs: number): Promise<{ durationMs: number; downtimeMs: number; ramTransferredBytes: number }>;
  /**
   * The source's pause, final memory flush and device state in one agent call (no coordinator
   * round trip between them while the guest is paused). Resolves with what ran (a failed step in
   * `failedStep`); UnimplementedError from an agent without it (nothing was paused then).
   */
  /** `destinationHost`: the shadow whose acknowledgement the flush waits for (the others do not hold the pause). */
  switchOut?(hostId: string, vmId: string, destinationUri: string, opts: { flushTimeoutMs: number; deviceStateTimeoutMs: number; destinationHost?: string }): Promise<SwitchOutOutcome>;
  /**
   * Armed resume of the destination's shadow: resolves once the guest runs there, which it does
   * as soon as the device state has loaded (the agent's time; of it, waiting for the load).
   * Rejects with reason ABORTED when a pause called it off (the guest did not run there), and
   * UNIMPLEMENTED from an agent without it.
   */
  resumeWhenLoaded?(hostId: string, vmId: string, timeoutMs: number): Promise<{ durationMs: number; waitedMs: number; runningAtUnixMs?: number }>;
}

/** One agent's switchOut: each step's time on the agent; the failed step (later ones did not run). */
export interface SwitchOutOutcome {
  /** Draining the replication before the pause (guest running; 0 from older agents). */
  quiesceMs?: number;
  /** When the guest was paused, on the source's clock (0/absent when unknown). */
  pausedAtUnixMs?: number;
  pauseMs: number;
  flushMs: number;
  finalEpoch: number;
  migrateMs: number;
  qemuDowntimeMs: number;
  ramTransferredBytes: number;
  failedStep?: 'pause-source' | 'flush-memory' | 'migrate-device-state';
  failedMs: number;
  error: string;
}

export interface MemoryPort {
  /** Why `hostId`'s memory shadow of `vmId` is not ready (lag, link state), or undefined. */
  notReadyReason(vmId: string, sourceHost: string, hostId: string): Promise<string | undefined>;
  /** Guest paused: the last delta; resolves with the epoch every shadow acknowledged. */
  flush(vmId: string, timeoutMs: number): Promise<{ finalEpoch: number }>;
  /** The source agent flushed on its own (a chained switch-out): noted on the memory shadow as flush() notes it. */
  flushed(vmId: string, sourceHost: string, finalEpoch: number): Promise<void>;
  /** Rounds again after a rolled-back switchover. */
  resume(vmId: string): Promise<void>;
  /** The guest left the source: its replication stops (given `sourceHost`: only a replication from that host). */
  stop(vmId: string, sourceHost?: string): Promise<void>;
  /** `hostId`'s memory shadow is invalid (the guest may have run on it): discarded and copied again in full. */
  resyncShadow(vmId: string, hostId: string, reason: string): Promise<void>;
}

export interface IpPort {
  /** Host the VM's address is active on; throws NotFoundError for a VM without IP config. */
  activeHost(vmId: string): string;
  /** Why `hostId`'s IP shadow is not current, or undefined. */
  notCurrentReason(vmId: string, hostId: string): string | undefined;
  /** The fenced deactivate/activate + lease update; its own rollback keeps the address on one host. */
  switchIp(vmId: string, destination: string, opts?: { returning?: boolean; partOfVmSwitchover?: boolean }): Promise<SwitchoverEvent>;
  /**
   * Optional: the same switch with its preparation done now (token admitted by both agents, the
   * source's channel to the destination up), holding the VM's address until the handle completes
   * or abandons it, so that work is not inside the guest's pause.
   */
  prepareSwitch?(vmId: string, destination: string, opts?: { partOfVmSwitchover?: boolean }): Promise<PreparedIpSwitch>;
  nextFencingToken(): Promise<number>;
}

// Port of the DHCP lease records the coordinator keeps in step with shadows and switchovers:
// `builtin` (the coordinator's own store) or `kea` (ISC Kea through lease_cmds).
import type { VmIpConfig } from '../../shared/vm-ip-config';

export interface LeaseRecord {
  vm_id: string;
  mac: string;
  address: string;
  /** The host the VM (and its address) is active on. */
  active_host: string;
  /** Hosts holding a shadow of the VM's IP configuration. */
  shadow_hosts: string[];
  updated_at_unix_ms: number;
}

export interface LeaseBackend {
  readonly name: string;
  /** Records where the VM is active and which hosts shadow it (creates the record if missing). */
  record(config: VmIpConfig, activeHost: string, shadowHosts: string[]): Promise<LeaseRecord>;
  /** The record for the VM's address, or undefined when the backend has none. */
  get(config: VmIpConfig): Promise<LeaseRecord | undefined>;
  close(): Promise<void>;
}

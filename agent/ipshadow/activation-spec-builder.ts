// Turns a VM's IP configuration into what IpApplier activates on THIS host: the address comes
// from the config, the mode and interface from this host's VM entry or its defaults, the tap from
// the QEMU the vm module runs here for the VM (its own tap for a shadow), else the VM entry. Pure.
import { parseIpActivationSpec, type IpActivationSpec } from '../net/ip-activation-spec';
import type { IpShadowAgentConfig } from './ipshadow-config';
import type { VmIpConfig } from '../../shared/vm-ip-config';

/** Which tap this host's QEMU of a VM uses for the NIC with a MAC (the vm module's answer). */
export type VmTapLookup = (vmId: string, mac: string) => string | undefined;

export function activationSpecFor(config: VmIpConfig, agent: Pick<IpShadowAgentConfig, 'vms' | 'defaultMode' | 'defaultInterface'>, vmTap?: VmTapLookup): IpActivationSpec {
  const local = agent.vms.find((v) => v.id === config.vm_id);
  const tap = (config.mac ? vmTap?.(config.vm_id, config.mac) : undefined) ?? local?.tap;
  const mode = local?.mode ?? (config.mode || agent.defaultMode);
  return parseIpActivationSpec({
    vmId: config.vm_id,
    mode,
    address: config.address,
    prefixLength: config.prefix_length,
    ...(config.gateway ? { gateway: config.gateway } : {}),
    interface: local?.interface ?? agent.defaultInterface,
    ...(tap ? { tap } : {}),
    mac: config.mac,
    ...(config.vlan_id ? { vlan: config.vlan_id } : {}),
  });
}

// Turns a VM's IP configuration into what IpApplier activates on THIS host: the address comes
// from the config, the mode, interface and tap from this host's VM entry or its defaults. Pure.
import { parseIpActivationSpec, type IpActivationSpec } from '../net/ip-activation-spec';
import type { IpShadowAgentConfig } from './ipshadow-config';
import type { VmIpConfig } from '../../shared/vm-ip-config';

export function activationSpecFor(config: VmIpConfig, agent: Pick<IpShadowAgentConfig, 'vms' | 'defaultMode' | 'defaultInterface'>): IpActivationSpec {
  const local = agent.vms.find((v) => v.id === config.vm_id);
  const mode = local?.mode ?? (config.mode || agent.defaultMode);
  return parseIpActivationSpec({
    vmId: config.vm_id,
    mode,
    address: config.address,
    prefixLength: config.prefix_length,
    ...(config.gateway ? { gateway: config.gateway } : {}),
    interface: local?.interface ?? agent.defaultInterface,
    ...(local?.tap ? { tap: local.tap } : {}),
    mac: config.mac,
    ...(config.vlan_id ? { vlan: config.vlan_id } : {}),
  });
}

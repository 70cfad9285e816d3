// The lab's VM network (used by test/lab/lab.ts): a VM bridge in the switch namespace with a
// dnsmasq namespace (the VMs' DHCP server) and a client namespace on it; each hypervisor host
// gets its own VM bridge (br0) uplinked to it, where the guest's tap and the shadow QEMUs' taps go.
import path from 'node:path';
import { HOST_VM_BRIDGE } from '../helpers/guest/guest-network';
import { LAB_DIR, type LabState } from './lab-state';
import { addNs, ip, startDetached } from './lab-os';

export const VM_NET = '10.79.0';
export const CLIENT_IP = `${VM_NET}.9`;
const VM_BRIDGE = 'vmnet';
export const DNSMASQ_LEASES = path.join(LAB_DIR, 'dnsmasq.leases');
const LEASE_SECONDS = 3600;

let portIndex = 0;
/** Connects `ns` to the VM bridge with a veth pair named `ifname` inside (optionally addressed). */
function attachToVmNetwork(switchNs: string, ns: string, ifname: string, address?: string): void {
  const outer = `vmp${portIndex++}`;
  ip(['link', 'add', outer, 'netns', switchNs, 'type', 'veth', 'peer', 'name', ifname, 'netns', ns]);
  if (address) ip(['-n', ns, 'addr', 'add', address, 'dev', ifname]);
  ip(['-n', ns, 'link', 'set', ifname, 'up']);
  ip(['-n', switchNs, 'link', 'set', outer, 'master', VM_BRIDGE]);
  ip(['-n', switchNs, 'link', 'set', outer, 'up']);
}

/** The VM bridge, the DHCP server (dnsmasq) and the client namespace. */
export function createVmNetwork(state: LabState, switchNs: string, nsPrefix: string): { clientNs: string; dhcpNs: string } {
  ip(['-n', switchNs, 'link', 'add', VM_BRIDGE, 'type', 'bridge']);
  // Ageing 0 floods every frame, so each host's capture on its br0 sees the guest's unicast DHCP
  // renewals as well as its broadcasts; forward_delay 0 so the ports forward at once.
  ip(['-n', switchNs, 'link', 'set', VM_BRIDGE, 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0', 'ageing_time', '0']);
  ip(['-n', switchNs, 'link', 'set', VM_BRIDGE, 'up']);
  const dhcpNs = addNs(state, `${nsPrefix}-dhcp`);
  attachToVmNetwork(switchNs, dhcpNs, 'eth0', `${VM_NET}.1/24`);
  const clientNs = addNs(state, `${nsPrefix}-client`);
  attachToVmNetwork(switchNs, clientNs, 'eth0', `${CLIENT_IP}/24`);
  startDetached(state, 'dnsmasq', dhcpNs, 'dnsmasq', [
    '--no-daemon', '--conf-file=/dev/null', '--port=0', '--user=root', '--bind-interfaces', '--interface=eth0', '--except-interface=lo',
    // By default dnsmasq pings an address for up to 3 s before offering it; the lab's range is ours alone.
    '--dhcp-authoritative', '--no-ping', `--dhcp-leasefile=${DNSMASQ_LEASES}`, '--log-dhcp', '--log-facility=-',
    `--dhcp-range=${VM_NET}.50,${VM_NET}.150,255.255.255.0,${LEASE_SECONDS}`, `--dhcp-option=option:router,${VM_NET}.1`,
    '--dhcp-option=option:domain-name,vm.umbra.lab',
  ]);
  return { clientNs, dhcpNs };
}

/** Makes host namespace `ns` a hypervisor: its VM bridge br0 with an uplink to the VM network. */
export function addHypervisorBridge(switchNs: string, ns: string): void {
  ip(['-n', ns, 'link', 'add', HOST_VM_BRIDGE, 'type', 'bridge']);
  ip(['-n', ns, 'link', 'set', HOST_VM_BRIDGE, 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0']);
  ip(['-n', ns, 'link', 'set', HOST_VM_BRIDGE, 'up']);
  attachToVmNetwork(switchNs, ns, 'uplink0');
  ip(['-n', ns, 'link', 'set', 'uplink0', 'master', HOST_VM_BRIDGE]);
}


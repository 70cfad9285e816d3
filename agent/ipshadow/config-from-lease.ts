// The IP configuration that a DHCP lease seen on the wire gives a VM.
import type { DhcpLease } from '../dhcp/dhcp-lease-table';
import { parseIp } from '../../shared/ip-address';
import type { NetworkMode } from '../../shared/network-mode';
import type { VmIpConfig } from '../../shared/vm-ip-config';

/** DhcpLease.leaseTimeSec of a lease that never ends. */
const INFINITE_LEASE_SEC = 0xffffffff;

/** 255.255.255.0 -> 24; undefined for a mask that is not contiguous ones. */
export function prefixFromMask(mask: string): number | undefined {
  const ip = parseIp(mask);
  if (!ip || ip.family !== 4) return undefined;
  const n = ((ip.bytes[0] << 24) | (ip.bytes[1] << 16) | (ip.bytes[2] << 8) | ip.bytes[3]) >>> 0;
  const ones = n === 0xffffffff ? 32 : Math.clz32(~n >>> 0);
  const expected = ones === 0 ? 0 : (0xffffffff << (32 - ones)) >>> 0;
  return n === expected ? ones : undefined;
}

/** The IP configuration a DHCP lease gives `vmId` (prefix from the mask, /24 when the server sent none). */
export function configFromLease(vmId: string, mode: NetworkMode | '', lease: DhcpLease): VmIpConfig {
  return {
    vm_id: vmId,
    mac: lease.mac,
    address: lease.address,
    prefix_length: (lease.subnetMask && prefixFromMask(lease.subnetMask)) || 24,
    gateway: lease.routers[0] ?? '',
    dns_servers: [...lease.dnsServers],
    domain_name: lease.domainName ?? '',
    hostname: lease.hostname ?? '',
    lease_time_sec: lease.leaseTimeSec === INFINITE_LEASE_SEC ? 0 : lease.leaseTimeSec,
    renewal_time_sec: lease.renewalTimeSec,
    rebinding_time_sec: lease.rebindingTimeSec,
    server_id: lease.serverId ?? '',
    lease_start_unix_ms: lease.leaseStartMs,
    expires_at_unix_ms: lease.expiresAtMs ?? 0,
    vlan_id: lease.vlanId ?? 0,
    mode,
    lease_state: lease.state,
  };
}

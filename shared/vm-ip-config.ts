// A VM's IP configuration as Umbra moves it around (learned from DHCP or given by an operator), its
// wire form (umbra.agent.v1.VmIpConfig) and strict parsing. Pure: no I/O.
import { InvalidArgumentError } from './errors';
import { formatMac, parseIp, parseMac } from './ip-address';
import { NETWORK_MODES, type NetworkMode } from './network-mode';

const MAX_IPV4_PREFIX = 32;

export interface VmIpConfig {
  vm_id: string;
  mac: string;
  address: string;
  prefix_length: number;
  gateway: string;
  dns_servers: string[];
  domain_name: string;
  hostname: string;
  lease_time_sec: number;
  renewal_time_sec: number;
  rebinding_time_sec: number;
  server_id: string;
  lease_start_unix_ms: number;
  /** 0 for an infinite lease. */
  expires_at_unix_ms: number;
  vlan_id: number;
  /** '' = the activating host's default mode. */
  mode: NetworkMode | '';
  lease_state: string;
}

export type VmIpConfigWire = Omit<VmIpConfig, 'lease_start_unix_ms' | 'expires_at_unix_ms'> & {
  lease_start_unix_ms: string;
  expires_at_unix_ms: string;
};

export function configToWire(c: VmIpConfig): VmIpConfigWire {
  return { ...c, dns_servers: [...c.dns_servers], lease_start_unix_ms: String(c.lease_start_unix_ms), expires_at_unix_ms: String(c.expires_at_unix_ms) };
}

function str(field: string, v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new InvalidArgumentError(field, 'must be a string');
  return v;
}

function uint(field: string, v: unknown, max = 0xffffffff): number {
  const n = typeof v === 'string' && v !== '' ? Number(v) : v === undefined || v === null || v === '' ? 0 : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0 || n > max) throw new InvalidArgumentError(field, `must be an integer from 0 to ${max}`);
  return n;
}

function ipv4(field: string, v: string, required: boolean): string {
  if (v === '' && !required) return '';
  const ip = parseIp(v);
  if (!ip || ip.family !== 4) throw new InvalidArgumentError(field, `must be an IPv4 address, got '${v}'`);
  return v;
}

/** Validates a wire (or plain) config field by field; InvalidArgumentError names the first bad field. */
export function parseVmIpConfig(raw: unknown, field = 'config'): VmIpConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new InvalidArgumentError(field, 'must be an object');
  const r = raw as Record<string, unknown>;
  const f = (k: string) => `${field}.${k}`;
  const vmId = str(f('vm_id'), r.vm_id);
  if (vmId.length === 0) throw new InvalidArgumentError(f('vm_id'), 'must be a non-empty string');
  const macBytes = parseMac(str(f('mac'), r.mac));
  if (!macBytes) throw new InvalidArgumentError(f('mac'), 'must be a MAC address (aa:bb:cc:dd:ee:ff)');
  const mode = str(f('mode'), r.mode);
  if (mode !== '' && !NETWORK_MODES.includes(mode as NetworkMode)) throw new InvalidArgumentError(f('mode'), `must be empty or one of ${NETWORK_MODES.join(', ')}`);
  const dns = r.dns_servers ?? [];
  if (!Array.isArray(dns)) throw new InvalidArgumentError(f('dns_servers'), 'must be a list');
  const prefix = uint(f('prefix_length'), r.prefix_length, MAX_IPV4_PREFIX);
  if (prefix < 1) throw new InvalidArgumentError(f('prefix_length'), 'must be an integer from 1 to 32');
  return {
    vm_id: vmId,
    mac: formatMac(macBytes),
    address: ipv4(f('address'), str(f('address'), r.address), true),
    prefix_length: prefix,
    gateway: ipv4(f('gateway'), str(f('gateway'), r.gateway), false),
    dns_servers: dns.map((d, i) => ipv4(`${f('dns_servers')}[${i}]`, str(`${f('dns_servers')}[${i}]`, d), true)),
    domain_name: str(f('domain_name'), r.domain_name),
    hostname: str(f('hostname'), r.hostname),
    lease_time_sec: uint(f('lease_time_sec'), r.lease_time_sec),
    renewal_time_sec: uint(f('renewal_time_sec'), r.renewal_time_sec),
    rebinding_time_sec: uint(f('rebinding_time_sec'), r.rebinding_time_sec),
    server_id: ipv4(f('server_id'), str(f('server_id'), r.server_id), false),
    lease_start_unix_ms: uint(f('lease_start_unix_ms'), r.lease_start_unix_ms, Number.MAX_SAFE_INTEGER),
    expires_at_unix_ms: uint(f('expires_at_unix_ms'), r.expires_at_unix_ms, Number.MAX_SAFE_INTEGER),
    vlan_id: uint(f('vlan_id'), r.vlan_id, 4094),
    mode: mode as NetworkMode | '',
    lease_state: str(f('lease_state'), r.lease_state),
  };
}

/** True when both describe the same configuration, field for field. */
export function sameConfig(a: VmIpConfig, b: VmIpConfig): boolean {
  const keys = Object.keys(a) as Array<keyof VmIpConfig>;
  return keys.length === Object.keys(b).length && keys.every((k) => JSON.stringify(a[k]) === JSON.stringify(b[k]));
}

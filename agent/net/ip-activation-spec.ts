// The IP configuration the agent activates for a VM, and its strict parser (pure, no I/O).
import { InvalidArgumentError } from '../../shared/errors';
import { formatIp, formatMac, hostPrefixLength, parseIp, parseMac } from '../../shared/ip-address';
import { NETWORK_MODES, type NetworkMode } from '../../shared/network-mode';


const MAX_VLAN_ID = 4094;
/** Linux IFNAMSIZ - 1. */
const MAX_IFNAME_LENGTH = 15;

/**
 * What IpApplier activates. Per mode:
 * - routed:  host route `address`/32|128 -> `tap`, proxy ARP/NDP entry on `interface`, announce
 *            `address` with `interface`'s MAC. Needs forwarding (and proxy_ndp for IPv6) enabled on the host.
 * - bridged: static FDB entry `mac` (on `vlan`) -> bridge port `tap`, permanent neighbour
 *            `address` -> `mac` on `interface` (the bridge), announce `address` with the VM's `mac`.
 * - address: `address`/`prefixLength` added to `interface`, announced with `interface`'s MAC.
 */
export interface IpActivationSpec {
  vmId: string;
  mode: NetworkMode;
  /** IPv4 or IPv6 address, canonical text, no prefix. */
  address: string;
  /** Prefix of the VM network (address mode puts the address on `interface` with it). */
  prefixLength: number;
  /** The VM's default router; recorded, not applied on the host. */
  gateway?: string;
  /** Host interface facing the VM network: announcements leave here. */
  interface: string;
  /** The VM's tap device (routed: route target; bridged: FDB port). */
  tap?: string;
  /** The VM's MAC, lower case (required in bridged mode). */
  mac?: string;
  /** VLAN id of the VM's port (bridged mode FDB entry). */
  vlan?: number;
}

const KNOWN_KEYS = new Set(['vmId', 'mode', 'address', 'prefixLength', 'gateway', 'interface', 'tap', 'mac', 'vlan']);

function ifname(field: string, v: unknown): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_IFNAME_LENGTH || /[\s/:]/.test(v)) {
    throw new InvalidArgumentError(field, `must be an interface name of 1-${MAX_IFNAME_LENGTH} characters without spaces, '/' or ':'`);
  }
  return v;
}

/** Validates `raw` field by field; throws InvalidArgumentError naming the first bad field. */
export function parseIpActivationSpec(raw: unknown): IpActivationSpec {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new InvalidArgumentError('ip_config', 'must be an object');
  const r = raw as Record<string, unknown>;
  for (const k of Object.keys(r)) if (!KNOWN_KEYS.has(k)) throw new InvalidArgumentError(k, 'unknown field');
  if (typeof r.vmId !== 'string' || r.vmId.length === 0) throw new InvalidArgumentError('vmId', 'must be a non-empty string');
  if (!NETWORK_MODES.includes(r.mode as NetworkMode)) throw new InvalidArgumentError('mode', `must be one of ${NETWORK_MODES.join(', ')}`);
  const mode = r.mode as NetworkMode;
  const ip = typeof r.address === 'string' ? parseIp(r.address) : undefined;
  if (!ip) throw new InvalidArgumentError('address', 'must be an IPv4 or IPv6 address without prefix');
  const maxPrefix = hostPrefixLength(ip.family);
  const prefixLength = r.prefixLength ?? maxPrefix;
  if (typeof prefixLength !== 'number' || !Number.isInteger(prefixLength) || prefixLength < 1 || prefixLength > maxPrefix) {
    throw new InvalidArgumentError('prefixLength', `must be an integer from 1 to ${maxPrefix}`);
  }
  const spec: IpActivationSpec = { vmId: r.vmId, mode, address: formatIp(ip.bytes), prefixLength, interface: ifname('interface', r.interface) };
  if (r.gateway !== undefined) {
    const gw = typeof r.gateway === 'string' ? parseIp(r.gateway) : undefined;
    if (!gw || gw.family !== ip.family) throw new InvalidArgumentError('gateway', `must be an IPv${ip.family} address`);
    spec.gateway = formatIp(gw.bytes);
  }
  if (r.tap !== undefined) spec.tap = ifname('tap', r.tap);
  if (r.mac !== undefined) {
    const mac = typeof r.mac === 'string' ? parseMac(r.mac) : undefined;
    if (!mac) throw new InvalidArgumentError('mac', 'must be a MAC address (aa:bb:cc:dd:ee:ff)');
    spec.mac = formatMac(mac);
  }
  if (r.vlan !== undefined) {
    if (typeof r.vlan !== 'number' || !Number.isInteger(r.vlan) || r.vlan < 1 || r.vlan > MAX_VLAN_ID) {
      throw new InvalidArgumentError('vlan', `must be an integer from 1 to ${MAX_VLAN_ID}`);
    }
    spec.vlan = r.vlan;
  }
  if ((mode === 'routed' || mode === 'bridged') && spec.tap === undefined) throw new InvalidArgumentError('tap', `is required in ${mode} mode`);
  if (mode === 'bridged' && spec.mac === undefined) throw new InvalidArgumentError('mac', 'is required in bridged mode');
  return spec;
}

// The agent's `vm` config section: VMs this host runs (their definitions), discovery of running
// QEMU, where shadow QEMUs attach (the host's VM bridge) and listen for device state.
import type { ConfigReader, Mapping } from '../../shared/config-reader';
import { InvalidArgumentError } from '../../shared/errors';
import { parseVmDefinition, type VmDefinition } from './vm-definition';

export const DEFAULT_QEMU_BINARY = 'qemu-system-x86_64';
export const DEFAULT_INCOMING_PORT_BASE = 49152;
export const DEFAULT_INCOMING_PORT_COUNT = 256;
/** How often shadow QEMUs are checked (and relaunched when dead). */
export const DEFAULT_SUPERVISE_INTERVAL_MS = 2000;
export const DEFAULT_DEVICE_STATE_TIMEOUT_MS = 10_000;

export interface VmAgentConfig {
  qemuBinary: string;
  /** Put the memory helper's userfaultfd preload library into QEMUs we launch (uffd-wp tracking). */
  preloadUffd: boolean;
  /**
   * Attach to running QEMUs (in this agent's network namespace) with a QMP socket that the config
   * does not declare. Off by default: QMP takes one client, so attaching takes the monitor over.
   */
  discover: boolean;
  /** Launch declared VMs that are not already running at start. */
  launchDeclared: boolean;
  /** Bridge the shadow QEMUs' taps are put on; '' = no NIC bridging (taps left unattached). */
  vmBridge: string;
  /** Address shadow QEMUs listen on for device state; '' = this host cannot hold shadow VMs. */
  incomingHost: string;
  incomingPortBase: number;
  incomingPortCount: number;
  superviseIntervalMs: number;
  deviceStateTimeoutMs: number;
  vms: VmDefinition[];
}

const KEYS = [
  'qemu_binary',
  'preload_uffd',
  'discover',
  'launch_declared',
  'vm_bridge',
  'incoming_host',
  'incoming_port_base',
  'incoming_port_count',
  'supervise_interval_ms',
  'device_state_timeout_ms',
  'vms',
] as const;

/** snake_case config keys to the definition's camelCase fields, recursively. Pure. */
export function camelKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(camelKeys);
  if (typeof v !== 'object' || v === null) return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()), camelKeys(x)]));
}

export function parseVmAgentConfig(r: ConfigReader, raw: unknown, path: string): VmAgentConfig {
  const m: Mapping = r.mapping(raw, path, KEYS);
  const vms: VmDefinition[] = [];
  const vmsRaw = m.vms ?? [];
  if (!Array.isArray(vmsRaw)) r.problem(`${path}.vms`, 'must be a list');
  else {
    vmsRaw.forEach((v, i) => {
      try {
        const def = parseVmDefinition(camelKeys(v));
        if (vms.some((d) => d.id === def.id)) r.problem(`${path}.vms[${i}].id`, `'${def.id}' is declared twice`);
        vms.push(def);
      } catch (err) {
        // parseVmDefinition names fields as vm.<camelCase>; report them under this entry.
        if (!(err instanceof InvalidArgumentError)) throw err;
        r.problem(`${path}.vms[${i}]${err.field.replace(/^vm/, '')}`, err.message.slice(err.field.length + 2));
      }
    });
  }
  const incomingHost = r.string(m, 'incoming_host', path, { default: '', pattern: /^$|^[A-Za-z0-9.:-]+$/, patternHint: 'must be an IP address or host name' });
  return {
    qemuBinary: r.string(m, 'qemu_binary', path, { default: DEFAULT_QEMU_BINARY }),
    preloadUffd: r.boolean(m, 'preload_uffd', path, { default: true }),
    discover: r.boolean(m, 'discover', path, { default: false }),
    launchDeclared: r.boolean(m, 'launch_declared', path, { default: true }),
    vmBridge: r.string(m, 'vm_bridge', path, { default: '', pattern: /^$|^[A-Za-z0-9_.-]{1,15}$/, patternHint: 'must be an interface name' }),
    incomingHost,
    incomingPortBase: r.integer(m, 'incoming_port_base', path, { default: DEFAULT_INCOMING_PORT_BASE, min: 1024, max: 65535 }),
    incomingPortCount: r.integer(m, 'incoming_port_count', path, { default: DEFAULT_INCOMING_PORT_COUNT, min: 1, max: 4096 }),
    superviseIntervalMs: r.integer(m, 'supervise_interval_ms', path, { default: DEFAULT_SUPERVISE_INTERVAL_MS, min: 100 }),
    deviceStateTimeoutMs: r.integer(m, 'device_state_timeout_ms', path, { default: DEFAULT_DEVICE_STATE_TIMEOUT_MS, min: 100 }),
    vms,
  };
}

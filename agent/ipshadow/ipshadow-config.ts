// The agent's `ipshadow` config section: VM-facing capture interfaces, network-mode defaults,
// announcement burst, and (until QEMU discovery) the VMs this host runs with their MAC and tap.
import type { ConfigReader, Mapping } from '../../shared/config-reader';
import { DEFAULT_ANNOUNCE_COUNT, DEFAULT_ANNOUNCE_INTERVAL_MS } from '../net/ip-applier';
import { NETWORK_MODES, type NetworkMode } from '../../shared/network-mode';
import { DEFAULT_CAPTURE_BUFFER_BYTES } from '../dhcp/pcap-capture';

const MIB = 1024 * 1024;

export const DEFAULT_REPORT_INTERVAL_MS = 30_000;
const MAC_PATTERN = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

export interface LocalVmConfig {
  id: string;
  mac: string;
  mode?: NetworkMode;
  interface?: string;
  tap?: string;
}

export interface IpShadowAgentConfig {
  /** Interfaces DHCP is captured on; none = no capture. */
  captureInterfaces: string[];
  /** Kernel ring per capture interface: frames it can hold while the agent is not scheduled. */
  captureBufferBytes: number;
  defaultMode: NetworkMode;
  /** VM-facing interface used when a VM entry names none. */
  defaultInterface: string;
  announceCount: number;
  announceIntervalMs: number;
  /** Full re-report of local VMs' configs to the coordinator, besides every change. */
  reportIntervalMs: number;
  /**
   * Hand-over datagrams (UDP on the agent's listen address and port) in switchovers; off: the
   * source hands over with HandOverIp alone, about 1.5 ms later (agent to agent on one machine).
   */
  handoverDatagrams: boolean;
  vms: LocalVmConfig[];
}

export function parseIpShadowAgentConfig(r: ConfigReader, raw: unknown, path: string): IpShadowAgentConfig {
  const m = r.mapping(raw, path, ['capture_interfaces', 'capture_buffer_mib', 'mode', 'interface', 'announce_count', 'announce_interval_ms', 'report_interval_ms', 'handover_datagrams', 'vms']);
  const vmsRaw = m.vms ?? [];
  const vms: LocalVmConfig[] = [];
  if (!Array.isArray(vmsRaw)) r.problem(`${path}.vms`, 'must be a list');
  else
    vmsRaw.forEach((v, i) => {
      const p = `${path}.vms[${i}]`;
      const e: Mapping = r.mapping(v, p, ['id', 'mac', 'mode', 'interface', 'tap']);
      const vm: LocalVmConfig = {
        id: r.string(e, 'id', p),
        mac: r.string(e, 'mac', p, { pattern: MAC_PATTERN, patternHint: 'must be a MAC address aa:bb:cc:dd:ee:ff' }).toLowerCase(),
      };
      if (e.mode !== undefined) vm.mode = r.string(e, 'mode', p, { oneOf: NETWORK_MODES }) as NetworkMode;
      if (e.interface !== undefined) vm.interface = r.string(e, 'interface', p);
      if (e.tap !== undefined) vm.tap = r.string(e, 'tap', p);
      if (vms.some((x) => x.id === vm.id)) r.problem(`${p}.id`, `duplicate VM id '${vm.id}'`);
      vms.push(vm);
    });
  return {
    captureInterfaces: r.stringList(m, 'capture_interfaces', path, { default: [] }),
    captureBufferBytes: r.integer(m, 'capture_buffer_mib', path, { default: DEFAULT_CAPTURE_BUFFER_BYTES / MIB, min: 1, max: 1024 }) * MIB,
    defaultMode: r.string(m, 'mode', path, { default: 'bridged', oneOf: NETWORK_MODES }) as NetworkMode,
    defaultInterface: r.string(m, 'interface', path, { default: 'br0' }),
    announceCount: r.integer(m, 'announce_count', path, { default: DEFAULT_ANNOUNCE_COUNT, min: 0, max: 100 }),
    announceIntervalMs: r.integer(m, 'announce_interval_ms', path, { default: DEFAULT_ANNOUNCE_INTERVAL_MS, min: 0, max: 10_000 }),
    reportIntervalMs: r.integer(m, 'report_interval_ms', path, { default: DEFAULT_REPORT_INTERVAL_MS, min: 100 }),
    handoverDatagrams: r.boolean(m, 'handover_datagrams', path, { default: true }),
    vms,
  };
}

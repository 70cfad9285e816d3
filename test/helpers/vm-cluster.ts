// What a QEMU switchover cluster needs beyond plain agents, shared by the VM switchover e2e test and
// the lab: each agent's `vm`, `replication` and `ipshadow` sections for one guest (launched by its
// source host from the test guest image, shadowed elsewhere), the coordinator's `ipshadow` and
// `switchover` sections, the step timings of a switchover, and ending the QEMUs the agents launched.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { discoverQemuProcesses } from '../../agent/vm/qemu-discovery';
import { type GuestImage, guestKernelAppend } from './guest-image';
import { HOST_VM_BRIDGE } from './guest/guest-network';
import { waitFor } from './netns';
import { writeYaml } from './umbra-cluster';

export interface ClusterGuest {
  id: string;
  mac: string;
  /** The tap on the source host's VM bridge (created beforehand, e.g. with addTap). */
  tap: string;
  memoryBytes: number;
  image: GuestImage;
  /** umbra-guest workload: UDP port, the share of RAM filled at boot, and the in-guest memory writer. */
  workload: { port: number; memwriteMb: number; memwriteRateMbps: number; fillPct?: number };
  /** Where the source agent's QEMU puts its QMP socket and serial log. */
  dir: string;
}

export const guestQmpPath = (g: ClusterGuest): string => path.join(g.dir, `${g.id}.qmp`);
export const guestSerialPath = (g: ClusterGuest): string => path.join(g.dir, `${g.id}.serial`);
const NETDEV = 'net0';

/**
 * The `vm`, `replication` and `ipshadow` sections of host `hostId` (management address `address`):
 * the source declares and launches the guest and replicates its RAM; every host can hold a shadow
 * QEMU (incoming on its management address) and captures DHCP on its VM bridge. Only the source
 * declares the VM to ipshadow: a host reports the leases of the VMs it declares, and the first
 * host to report a VM becomes its active host. Bridged activation takes the VM's tap from the vm
 * module (the guest's tap on the source, the shadow QEMU's own tap elsewhere).
 */
/** Where host's agent (data dir `dataDir`) puts the QMP socket of its shadow QEMU of `vmId`. */
export const shadowQmpPath = (dataDir: string, vmId: string): string => path.join(dataDir, 'vm', `${encodeURIComponent(vmId)}.shadow.qmp`);

export interface VmAgentSectionOptions {
  roundIntervalMs?: number;
  /**
   * The other hosts' data dirs: given, they may replicate the guest's memory onward once their
   * shadow QEMU runs it (after a switchover), from that QEMU's QMP socket.
   */
  shadowDataDir?: string;
}

export function vmAgentSections(hostId: string, address: string, sourceHost: string, guest: ClusterGuest, opts: VmAgentSectionOptions = {}): Record<string, unknown> {
  const roundIntervalMs = opts.roundIntervalMs ?? 50;
  const isSource = hostId === sourceHost;
  const vm = {
    vm_bridge: HOST_VM_BRIDGE,
    incoming_host: address,
    ...(isSource
      ? {
          vms: [
            {
              id: guest.id,
              memory_size_bytes: guest.memoryBytes,
              boot: { kind: 'kernel', kernel_path: guest.image.kernelPath, initrd_path: guest.image.initrdPath, append: guestKernelAppend(guest.workload) },
              nics: [{ mac: guest.mac, tap_name: guest.tap, netdev_id: NETDEV }],
              qmp_socket_path: guestQmpPath(guest),
              serial_log_path: guestSerialPath(guest),
            },
          ],
        }
      : {}),
  };
  const replication = isSource
    ? { min_round_interval_ms: roundIntervalMs, vms: [{ id: guest.id, qmp_socket: guestQmpPath(guest), memory_bytes: guest.memoryBytes }] }
    : {
        min_round_interval_ms: roundIntervalMs,
        ...(opts.shadowDataDir ? { vms: [{ id: guest.id, qmp_socket: shadowQmpPath(opts.shadowDataDir, guest.id), memory_bytes: guest.memoryBytes }] } : {}),
      };
  const ipshadow = {
    capture_interfaces: [HOST_VM_BRIDGE],
    interface: HOST_VM_BRIDGE,
    report_interval_ms: 1000,
    vms: isSource ? [{ id: guest.id, mac: guest.mac }] : [],
  };
  return { vm, replication, ipshadow };
}

/** Adds the coordinator's `ipshadow` (shadow placement) and `switchover` sections to a written config. */
export function addVmSwitchoverSections(configPath: string, opts: { maxShadowedVms: number; shadowVmIntervalMs?: number; switchover?: Record<string, unknown> }): void {
  const cfg = parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
  // Every host is a namespace of one machine: the load they report is the machine's, so placement ignores it.
  cfg.ipshadow = { shadowing_threshold: 0.1, max_shadowed_vms: opts.maxShadowedVms, placement_uses_host_load: false, shadowing_refresh_interval_ms: 1000, reconcile_interval_ms: 3000 };
  cfg.switchover = { shadow_vm_interval_ms: opts.shadowVmIntervalMs ?? 500, shadow_vm_sweep_interval_ms: opts.shadowVmIntervalMs ?? 500, ...opts.switchover };
  writeYaml(configPath, cfg);
}

/** A switchover as TriggerMigration returns it (umbractl migrate --json). */
export interface WireSwitchover {
  id: string;
  status: string;
  source_host: string;
  destination_host: string;
  error: string;
  total_ms: number;
  steps: Array<{ step: string; host_id: string; duration_ms: number; ok: boolean; error: string }>;
  guest_paused_ms?: number;
}

/** The steps during which the guest runs nowhere: from the source's pause to the destination's resume. */
export const GUEST_PAUSED_STEPS = ['pause-source', 'flush-memory', 'migrate-device-state', 'resume-destination'];

/**
 * How long the guest was paused (undefined when it never resumed on the destination): the
 * agents' own instants when the event has them (an armed destination runs the guest before the
 * coordinator's steps end), else the sum of the steps.
 */
export function guestPauseMs(sw: WireSwitchover): { ms: number; from: 'agents' | 'steps' } | undefined {
  const steps = sw.steps.filter((s) => GUEST_PAUSED_STEPS.includes(s.step));
  if (!steps.some((s) => s.step === 'resume-destination' && s.ok)) return undefined;
  if (sw.guest_paused_ms) return { ms: sw.guest_paused_ms, from: 'agents' };
  return { ms: steps.reduce((sum, s) => sum + s.duration_ms, 0), from: 'steps' };
}

/** True while `pid` exists at all (zombies included). */
export function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** QEMU processes whose QMP socket lies under `dir` (those the agents of one run launched). */
export async function qemusUnder(dir: string): Promise<Array<{ pid: number; qmpSocketPath: string }>> {
  const prefix = dir.endsWith(path.sep) ? dir : dir + path.sep;
  return (await discoverQemuProcesses().catch(() => [])).filter((q) => q.qmpSocketPath.startsWith(prefix));
}

/**
 * Ends, by PID, the QEMUs with a QMP socket under `dir` (they outlive the agents that launched
 * them), then waits until they are reaped, so none is left behind. Returns the PIDs killed.
 */
export async function killQemusUnder(dir: string, timeoutMs = 10000): Promise<number[]> {
  const killed: number[] = [];
  for (const q of await qemusUnder(dir)) {
    try {
      process.kill(q.pid, 'SIGKILL');
      killed.push(q.pid);
    } catch {
      // already gone
    }
  }
  await waitFor('killed QEMUs reaped', async () => killed.every((pid) => !pidExists(pid)) || undefined, timeoutMs, 100).catch(() => undefined);
  return killed;
}

// What `umbra-agent health` shows of the VMs on this host and the shadows held here, merged per VM
// from the modules that each know a part: vm (QEMU pid, run state, taps), replication (tracker and
// lag per shadow on the source side; applied epoch of the image on the shadow side) and ipshadow
// (IP config version and age). The merge is pure; collectHostView reads the running modules.
import { AGENT_MODULE_NAMES, moduleApi, type RunningAgentModule } from '../agent-module';

/** One shadow host a local VM's memory streams to. */
export interface ReplicationLagView {
  shadow_host: string;
  state: string;
  acked_epoch: number;
  lag_bytes: number;
}

export interface VmHealthView {
  vm_id: string;
  qemu_pid: number;
  run_state: string;
  taps: string[];
  memory_bytes: number;
  /** Dirty-page tracker in use ('' when the VM is not replicating). */
  memory_tracker: string;
  /** Epoch of the source's last round ('' tracker = 0). */
  memory_epoch: number;
  replication: ReplicationLagView[];
}

export interface ShadowHealthView {
  vm_id: string;
  source_host: string;
  ip_config_held: boolean;
  ip_config_version: number;
  /** Since the coordinator's last push (-1: no IP shadow). */
  ip_config_age_ms: number;
  /** Since DHCP of the VM's MAC was last seen here (-1: never). */
  ip_sniffed_age_ms: number;
  ip_active: boolean;
  memory_image_held: boolean;
  memory_applied_epoch: number;
  memory_streaming: boolean;
  /** Since the applied epoch last advanced, as sampled by the agent (-1: not observed advancing). */
  memory_lag_ms: number;
  memory_error: string;
  /** Shadow QEMU run state ('' when the vm module holds no shadow QEMU of the VM). */
  qemu_state: string;
  qemu_pid: number;
  qemu_incoming_uri: string;
  qemu_relaunches: number;
  taps: string[];
}

/** The parts, as the modules report them (structural: fakes in tests, module APIs in the agent). */
export interface VmPart {
  vmId: string;
  role: 'local' | 'shadow';
  status: string;
  pid: number;
  memoryBytes: number;
  incomingUri: string;
  relaunches: number;
  taps: string[];
}
export interface ReplicationSourcePart {
  vmId: string;
  tracker: string;
  epoch: number;
  memoryBytes: number;
  shadows: Array<{ id: string; state: string; ackedEpoch: number; lagBytes: number }>;
}
export interface ShadowImagePart {
  vmId: string;
  epoch: number;
  connected: boolean;
  lastError?: string;
}
export interface IpShadowPart {
  vm_id: string;
  source_host: string;
  version: number;
  received_at_unix_ms: number;
  sniffed_at_unix_ms: number;
  active: boolean;
}

export interface HostViewParts {
  vms: VmPart[];
  sources: ReplicationSourcePart[];
  images: ShadowImagePart[];
  ipShadows: IpShadowPart[];
  /** VM ids whose IP is active on this host. */
  ipActive: string[];
}

/** When each shadow image's applied epoch was first seen at its current value. */
export class EpochAdvanceClock {
  private readonly seen = new Map<string, { epoch: number; atMs: number; advanced: boolean }>();

  observe(images: ShadowImagePart[], nowMs: number): void {
    const ids = new Set(images.map((i) => i.vmId));
    for (const id of [...this.seen.keys()]) if (!ids.has(id)) this.seen.delete(id);
    for (const i of images) {
      const s = this.seen.get(i.vmId);
      if (!s) this.seen.set(i.vmId, { epoch: i.epoch, atMs: nowMs, advanced: false });
      else if (s.epoch !== i.epoch) this.seen.set(i.vmId, { epoch: i.epoch, atMs: nowMs, advanced: true });
    }
  }

  /** Ms since the epoch last advanced; -1 when it was not seen advancing. */
  ageMs(vmId: string, nowMs: number): number {
    const s = this.seen.get(vmId);
    return s?.advanced ? nowMs - s.atMs : -1;
  }
}

const age = (atMs: number, nowMs: number) => (atMs > 0 ? Math.max(0, nowMs - atMs) : -1);

export function buildHostView(p: HostViewParts, nowMs: number, clock?: EpochAdvanceClock): { vms: VmHealthView[]; shadows: ShadowHealthView[] } {
  const active = new Set(p.ipActive);
  const vms: VmHealthView[] = p.vms
    .filter((v) => v.role === 'local')
    .map((v) => {
      const src = p.sources.find((s) => s.vmId === v.vmId);
      return {
        vm_id: v.vmId,
        qemu_pid: v.pid,
        run_state: v.status,
        taps: v.taps,
        memory_bytes: v.memoryBytes || src?.memoryBytes || 0,
        memory_tracker: src?.tracker ?? '',
        memory_epoch: src?.epoch ?? 0,
        replication: (src?.shadows ?? []).map((l) => ({ shadow_host: l.id, state: l.state, acked_epoch: l.ackedEpoch, lag_bytes: l.lagBytes })),
      };
    });
  // A replicating VM the vm module does not drive (declared to replication only) is still shown.
  for (const s of p.sources) {
    if (vms.some((v) => v.vm_id === s.vmId)) continue;
    vms.push({
      vm_id: s.vmId, qemu_pid: 0, run_state: 'not driven by the vm module', taps: [], memory_bytes: s.memoryBytes, memory_tracker: s.tracker, memory_epoch: s.epoch,
      replication: s.shadows.map((l) => ({ shadow_host: l.id, state: l.state, acked_epoch: l.ackedEpoch, lag_bytes: l.lagBytes })),
    });
  }
  const localIds = new Set(vms.map((v) => v.vm_id));
  const shadowQemus = p.vms.filter((v) => v.role === 'shadow');
  const ids = new Set<string>([
    ...p.ipShadows.map((s) => s.vm_id),
    ...shadowQemus.map((v) => v.vmId),
    // A memory image of a VM that runs here is what it was promoted from, not a shadow.
    ...p.images.map((i) => i.vmId).filter((id) => !localIds.has(id) || shadowQemus.some((v) => v.vmId === id)),
  ]);
  const shadows: ShadowHealthView[] = [...ids].map((id) => {
    const ip = p.ipShadows.find((s) => s.vm_id === id);
    const img = p.images.find((i) => i.vmId === id);
    const q = shadowQemus.find((v) => v.vmId === id);
    return {
      vm_id: id,
      source_host: ip?.source_host ?? '',
      ip_config_held: ip !== undefined,
      ip_config_version: ip?.version ?? 0,
      ip_config_age_ms: ip ? age(ip.received_at_unix_ms, nowMs) : -1,
      ip_sniffed_age_ms: ip ? age(ip.sniffed_at_unix_ms, nowMs) : -1,
      ip_active: ip?.active === true || active.has(id),
      memory_image_held: img !== undefined,
      memory_applied_epoch: img?.epoch ?? 0,
      memory_streaming: img?.connected === true,
      memory_lag_ms: img && clock ? clock.ageMs(id, nowMs) : -1,
      memory_error: img?.lastError ?? '',
      qemu_state: q?.status ?? '',
      qemu_pid: q?.pid ?? 0,
      qemu_incoming_uri: q?.incomingUri ?? '',
      qemu_relaunches: q?.relaunches ?? 0,
      taps: q?.taps ?? [],
    };
  });
  vms.sort((a, b) => a.vm_id.localeCompare(b.vm_id));
  shadows.sort((a, b) => a.vm_id.localeCompare(b.vm_id));
  return { vms, shadows };
}

/** The module interfaces read here (each optional: a module that does not run contributes nothing). */
interface VmModuleApi {
  host: { list(): Promise<Array<{ vmId: string; role: 'local' | 'shadow'; status: string; pid: number; memoryBytes: number; incomingUri: string; relaunches: number; definition?: { nics: Array<{ mac: string }> } }>> };
  tapOf(vmId: string, mac: string): string | undefined;
}
interface ReplicationModuleApi {
  sources(): ReplicationSourcePart[];
  images(): Promise<ShadowImagePart[]>;
}
interface IpShadowModuleApi {
  ipShadows(): IpShadowPart[];
  ipActive(): string[];
}

/** Reads the parts from the running modules; a module's failure is reported and its part left empty. */
export async function collectHostViewParts(modules: ReadonlyMap<string, RunningAgentModule>, onError: (m: string) => void): Promise<HostViewParts> {
  const vm = moduleApi<VmModuleApi>(modules, AGENT_MODULE_NAMES.vm, 'host');
  const rep = moduleApi<ReplicationModuleApi>(modules, AGENT_MODULE_NAMES.replication, 'images');
  const ip = moduleApi<IpShadowModuleApi>(modules, AGENT_MODULE_NAMES.ipshadow, 'ipShadows');
  const guard = async <T>(what: string, f: () => T | Promise<T>, empty: T): Promise<T> => {
    try {
      return await f();
    } catch (err) {
      onError(`health: reading ${what} failed: ${err instanceof Error ? err.message : String(err)}`);
      return empty;
    }
  };
  const [views, images] = await Promise.all([guard('VMs', () => vm?.host.list() ?? [], []), guard('shadow images', () => rep?.images() ?? [], [])]);
  return {
    vms: views.map((v) => ({
      vmId: v.vmId,
      role: v.role,
      status: v.status,
      pid: v.pid,
      memoryBytes: v.memoryBytes,
      incomingUri: v.incomingUri,
      relaunches: v.relaunches,
      taps: [...new Set((v.definition?.nics ?? []).map((n) => vm!.tapOf(v.vmId, n.mac) ?? '').filter((t) => t !== ''))],
    })),
    sources: await guard('replication sources', () => rep?.sources() ?? [], []),
    images,
    ipShadows: await guard('IP shadows', () => ip?.ipShadows() ?? [], []),
    ipActive: await guard('active IPs', () => ip?.ipActive() ?? [], []),
  };
}

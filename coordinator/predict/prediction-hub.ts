// The coordinator's prediction state around the engine: which VM runs where (from the agents'
// reports), each host's base load and sampler cost, the policy and migration history; answers
// per-VM advice, per-host saturation and failure risk, and destination ranks over the registry's
// hosts. Pure logic: the module feeds it telemetry and host records, and reads from it.

import { NotFoundError } from '../../shared/errors';
import type { HostRecord } from '../../shared/host-types';
import { PredictiveRanker } from '../rank/predictive-ranker';
import type { HostView, RankContext, Ranker, RankResult, VmView } from '../rank/types';
import { hostViewOf } from '../shadow/host-views';
import { AffinityGroups } from './affinity-groups';
import { HostSaturation } from './host-saturation';
import { adviseMigration, MigrationAdvice } from './migration-advisor';
import { MigrationHistory } from './migration-history';
import { PredictionEngine, VmForecast } from './prediction-engine';
import { defaultPolicy, PredictionPolicy } from './prediction-policy';
import { FailureRisk } from './failure-risk';
import { SamplerCost, TelemetryReport } from './telemetry-report';

/** A VM not reported for this long no longer counts on its host. */
export const DEFAULT_VM_STALE_MS = 10 * 60_000;

export interface HubOptions {
  engine: PredictionEngine;
  /** Count host load outside the VMs (false for lab hosts sharing one machine). */
  useHostLoad?: boolean;
  /** Share of capacity that counts as saturated. */
  saturationFraction?: number;
  vmStaleMs?: number;
  now?: () => number;
}

interface VmInfo {
  vmId: string;
  hostId: string;
  vcpus: number;
  memoryAllocationBytes: number;
  dirtyRateBytesPerSec: number;
  cpuCores: number;
  memoryBytes: number;
  lastSeenMs: number;
  /** GPU models passed through to the guest (absent: none). */
  gpuModels?: readonly string[];
  /** When a switchover recorded here moved it to hostId (the coordinator's clock). */
  movedAtMs?: number;
}

interface HostInfo {
  /** Busy cores and used memory outside the reported VMs, at the last host sample. */
  baseCpuCores: number;
  baseMemoryBytes: number;
  cost: SamplerCost;
  lastReportMs: number;
}

export interface HostPrediction {
  hostId: string;
  saturation: HostSaturation;
  failure: FailureRisk;
  vmIds: string[];
  cost?: SamplerCost;
  lastReportMs: number;
}

export interface VmPrediction {
  vmId: string;
  hostId: string;
  advice: MigrationAdvice;
  forecast?: VmForecast;
  anomalyScore: number;
}

export class PredictionHub {
  readonly engine: PredictionEngine;
  readonly history = new MigrationHistory();
  private readonly ranker = new PredictiveRanker();
  private readonly vms = new Map<string, VmInfo>();
  private readonly hosts = new Map<string, HostInfo>();
  private policyValue: PredictionPolicy = defaultPolicy();
  private readonly now: () => number;
  private warmShadowHosts?: (vmId: string) => Iterable<string>;
  /** The policy's keep-together / keep-apart groups. */
  private affinity = new AffinityGroups();
  /** Bumped by every change host views depend on, besides the engine's own (its generation). */
  private generation = 0;
  /** The last grouping of VMs by host: see vmsByHost. */
  private grouping?: { generation: number; validUntilMs: number; byHost: ReadonlyMap<string, VmInfo[]> };
  /** The last ranking's host views: see sharedHostViews. */
  private lastViews?: { hosts: readonly HostRecord[]; byHost: ReadonlyMap<string, VmInfo[]>; generation: number; engineGeneration: number; views: HostView[] };
  /** The policy's VMs that must leave their source's failure domain (all: every VM). */
  private otherDomain: { all: boolean; vmIds: ReadonlySet<string> } = { all: false, vmIds: new Set() };

  constructor(private readonly o: HubOptions) {
    this.engine = o.engine;
    this.now = o.now ?? Date.now;
  }

  get policy(): PredictionPolicy {
    return this.policyValue;
  }

  setPolicy(p: PredictionPolicy): void {
    const affinity = new AffinityGroups();
    for (const g of p.groups ?? []) affinity.define(g.name, g.kind, g.vmIds);
    this.policyValue = p;
    this.affinity = affinity;
    this.generation++;
    this.otherDomain = { all: p.otherFailureDomain?.allVms === true, vmIds: new Set(p.otherFailureDomain?.vmIds ?? []) };
  }

  /**
   * The VM's hard placement needs beyond capacity and CPU, as the ranker's VmView carries them:
   * its keep-apart and keep-together groups, the GPUs it holds, and the policy's failure-domain rule.
   */
  private constraintsOf(vmId: string): Pick<VmView, 'keepApartGroups' | 'keepTogetherGroups' | 'gpuModels' | 'requireOtherFailureDomain'> {
    const apart = this.affinity.keepApartOf(vmId);
    const together = this.affinity.keepTogetherOf(vmId);
    const gpus = this.vms.get(vmId)?.gpuModels;
    return {
      ...(apart.length ? { keepApartGroups: apart } : {}),
      ...(together.length ? { keepTogetherGroups: together } : {}),
      ...(gpus?.length ? { gpuModels: gpus } : {}),
      ...(this.otherDomain.all || this.otherDomain.vmIds.has(vmId) ? { requireOtherFailureDomain: true } : {}),
    };
  }

  /** Takes one agent report; returns how many readings were taken. */
  ingest(r: TelemetryReport): { accepted: number; dropped: number } {
    let accepted = 0;
    let dropped = r.dropped;
    const now = this.now();
    for (const p of r.vms) {
      const known = this.vms.get(p.vmId);
      // A reading its old host took before the VM moved away (a batch sent after the switchover)
      // must not put the VM back there: advice would then move it again from a host it has left.
      if (known?.movedAtMs !== undefined && known.hostId !== r.hostId && p.timeMs <= known.movedAtMs) {
        dropped++;
        continue;
      }
      if (!this.engine.recordVmSample(p.vmId, p.timeMs, p.cpuPercent, p.memoryPercent)) {
        dropped++;
        continue;
      }
      accepted++;
      this.vms.set(p.vmId, {
        vmId: p.vmId,
        hostId: r.hostId,
        vcpus: p.vcpus,
        memoryAllocationBytes: p.memoryAllocationBytes,
        dirtyRateBytesPerSec: p.dirtyRateBytesPerSec,
        cpuCores: p.cpuCores,
        memoryBytes: p.memoryBytes,
        lastSeenMs: now,
        ...(p.gpuModels?.length ? { gpuModels: p.gpuModels } : {}),
        ...(known?.movedAtMs !== undefined ? { movedAtMs: known.movedAtMs } : {}),
      });
    }
    for (const h of r.health) {
      this.engine.recordHealth(r.hostId, h);
      accepted++;
    }
    // Before the grouping is read below (its VMs just changed); it also covers the host's base load set after.
    this.generation++;
    const info = this.hosts.get(r.hostId) ?? { baseCpuCores: 0, baseMemoryBytes: 0, cost: r.cost, lastReportMs: now };
    const last = r.host[r.host.length - 1];
    if (last) {
      const local = this.vmsOn(r.hostId);
      info.baseCpuCores = Math.max(0, last.cpuBusyCores - local.reduce((a, v) => a + v.cpuCores, 0));
      info.baseMemoryBytes = Math.max(0, last.memoryUsedBytes - local.reduce((a, v) => a + v.memoryBytes, 0));
    }
    accepted += r.host.length;
    if (r.cost.samples > 0) info.cost = r.cost;
    info.lastReportMs = now;
    this.hosts.set(r.hostId, info);
    return { accepted, dropped };
  }

  /**
   * The VMs reported recently, by host (callers must not change it). Built in one pass over the VMs
   * and kept until the hub changes or the first of them goes stale: advice for each VM reads its
   * host's VMs, so a scan per call made an advice round quadratic in the fleet.
   */
  private vmsByHost(): ReadonlyMap<string, VmInfo[]> {
    const now = this.now();
    const g = this.grouping;
    if (g && g.generation === this.generation && now <= g.validUntilMs) return g.byHost;
    const staleMs = this.o.vmStaleMs ?? DEFAULT_VM_STALE_MS;
    const byHost = new Map<string, VmInfo[]>();
    let validUntilMs = Infinity;
    for (const v of this.vms.values()) {
      if (v.lastSeenMs < now - staleMs) continue;
      validUntilMs = Math.min(validUntilMs, v.lastSeenMs + staleMs);
      const list = byHost.get(v.hostId);
      if (list) list.push(v);
      else byHost.set(v.hostId, [v]);
    }
    this.grouping = { generation: this.generation, validUntilMs, byHost };
    return byHost;
  }

  private vmsOn(hostId: string): VmInfo[] {
    return this.vmsByHost().get(hostId) ?? [];
  }

  private demandOf(v: VmInfo) {
    return this.engine.demand({ vmId: v.vmId, vcpus: v.vcpus, memoryBytes: v.memoryAllocationBytes });
  }

  knownVms(): string[] {
    return [...this.vms.keys()].sort();
  }

  vmHost(vmId: string): string | undefined {
    return this.vms.get(vmId)?.hostId;
  }

  /** Records a migration's outcome (history for the ranker) and moves the VM in our view. */
  recordMigration(vmId: string, sourceHostId: string, destinationHostId: string, ok: boolean, error?: string): void {
    this.history.record({ vmId, sourceHostId, destinationHostId, ok, atMs: this.now(), ...(error ? { error } : {}) });
    const v = this.vms.get(vmId);
    if (ok && v) {
      v.hostId = destinationHostId;
      v.movedAtMs = this.now();
    }
    this.generation++;
  }

  hostPrediction(h: HostRecord): HostPrediction {
    const hostId = h.facts.host_id;
    const info = this.hosts.get(hostId);
    const vms = this.vmsOn(hostId);
    const base = this.o.useHostLoad === false || !info ? { baseCpuCores: 0, baseMemoryBytes: 0 } : { baseCpuCores: info.baseCpuCores, baseMemoryBytes: info.baseMemoryBytes };
    const saturation = this.engine.hostSaturation(
      { cpuCores: h.facts.capacity.cpu_threads || h.facts.capacity.cpu_cores, memoryBytes: h.facts.capacity.memory_bytes },
      vms.map((v) => ({ vmId: v.vmId, vcpus: v.vcpus, memoryBytes: v.memoryAllocationBytes })),
      { saturationFraction: this.o.saturationFraction, ...base },
    );
    return { hostId, saturation, failure: this.engine.hostFailureRisk(hostId), vmIds: vms.map((v) => v.vmId), ...(info ? { cost: info.cost } : {}), lastReportMs: info?.lastReportMs ?? 0 };
  }

  /**
   * What the ranker sees of the registry's hosts (capacity, forecast peaks, failure risk, groups,
   * free GPUs) for ranking any VM against `hosts`, every VM counted where it runs, and the same
   * array while neither the host list nor anything views depend on changed: the ranker compiles a
   * host table once per array, so an advice round over the fleet builds views and table once, not
   * once per VM ranked. The ranked VM weighs only on its own host, the source, which the ranker
   * rejects before reading its load, groups or GPUs.
   */
  private sharedHostViews(hosts: readonly HostRecord[]): HostView[] {
    const byHost = this.vmsByHost();
    const c = this.lastViews;
    if (c && c.hosts === hosts && c.byHost === byHost && c.generation === this.generation && c.engineGeneration === this.engine.generation) return c.views;
    const views = hosts.map((h) => this.enrichHost(hostViewOf(h, false), byHost.get(h.facts.host_id) ?? []));
    this.lastViews = { hosts, byHost, generation: this.generation, engineGeneration: this.engine.generation, views };
    return views;
  }

  /** `withBase`: add the host's load outside its VMs (callers whose view already holds host load pass false). */
  private enrichHost(view: HostView, here: readonly VmInfo[], excludeVmId?: string, withBase = true): HostView {
    const info = this.hosts.get(view.id);
    const base = withBase && this.o.useHostLoad !== false;
    let cpu = base ? (info?.baseCpuCores ?? 0) : 0;
    let mem = base ? (info?.baseMemoryBytes ?? 0) : 0;
    for (const v of here) {
      if (v.vmId === excludeVmId) continue;
      const d = this.demandOf(v);
      cpu += d.cpuPeakCores;
      mem += d.memoryPeakBytes;
    }
    // The groups of the VMs it holds (not the VM being ranked): anti-affinity and togetherness.
    const labels = this.affinity.hostLabels(here.map((v) => v.vmId), excludeVmId);
    const groups = labels.length ? [...new Set([...(view.groups ?? []), ...labels])] : view.groups;
    const freeGpus = withoutHeldGpus(view.freeGpuModels, here);
    return {
      ...view,
      cpuPeakCores: Math.max(view.cpuPeakCores, cpu),
      memoryPeakBytes: Math.max(view.memoryPeakBytes, mem),
      failureRisk: this.engine.hostFailureRisk(view.id).risk,
      ...(groups ? { groups } : {}),
      ...(freeGpus ? { freeGpuModels: freeGpus } : {}),
    };
  }

  private vmView(v: VmInfo, source: HostRecord | undefined): VmView {
    const d = this.demandOf(v);
    const c = source?.facts.capacity;
    return {
      id: v.vmId,
      sourceHostId: v.hostId,
      cpuPeakCores: d.cpuPeakCores,
      memoryPeakBytes: d.memoryPeakBytes,
      memorySizeBytes: v.memoryAllocationBytes,
      dirtyRateBytesPerSec: v.dirtyRateBytesPerSec,
      cpuModel: c?.cpu_model ?? '',
      ...(c ? { cpuFamily: c.cpu_vendor } : {}),
      // A guest started with the source's CPU may rely on any of its flags.
      requiredCpuFlags: c?.cpu_flags ?? [],
      ...this.constraintsOf(v.vmId),
    };
  }

  /**
   * Where warm shadows of a VM are (the module that keeps them installs this; undefined removes
   * it): the ranker's warm-shadow term and migration cost then count them.
   */
  setWarmShadowHosts(fn: ((vmId: string) => Iterable<string>) | undefined): void {
    this.warmShadowHosts = fn;
  }

  rank(vmId: string, hosts: readonly HostRecord[], opts: { limit?: number; explainRejected?: boolean } = {}): RankResult {
    const v = this.vms.get(vmId);
    if (!v) throw new NotFoundError('VM', vmId);
    const source = hosts.find((h) => h.facts.host_id === v.hostId);
    const context: RankContext = {
      history: this.history.lookup(this.now()),
      ...(this.warmShadowHosts ? { warmShadowHosts: this.warmShadowHosts } : {}),
      ...(opts.limit ? { limit: opts.limit } : {}),
      explainRejected: opts.explainRejected === true,
    };
    return this.ranker.rank(this.vmView(v, source), this.sharedHostViews(hosts), context);
  }

  vmPrediction(vmId: string, hosts: readonly HostRecord[]): VmPrediction {
    const v = this.vms.get(vmId);
    if (!v) throw new NotFoundError('VM', vmId);
    const source = hosts.find((h) => h.facts.host_id === v.hostId);
    const best = this.rank(vmId, hosts, { limit: 1 }).ranked[0];
    const d = this.demandOf(v);
    const anomaly = this.engine.anomaly(vmId);
    const host = source
      ? this.hostPrediction(source)
      : { saturation: { probability: 0, cpuProbability: 0, memoryProbability: 0, cpuPeakFraction: 0, memoryPeakFraction: 0, cpuExcessCores: 0, memoryExcessBytes: 0 }, failure: this.engine.hostFailureRisk(v.hostId) };
    const advice = adviseMigration(
      {
        vmId,
        nowMs: this.now(),
        horizonMinutes: this.engine.horizonMinutes,
        host: host.saturation,
        hostFailure: host.failure,
        anomaly,
        vmCpuPeakCores: d.cpuPeakCores,
        vmMemoryPeakBytes: d.memoryPeakBytes,
        ...(best ? { destination: { hostId: best.hostId, predictedMigrationSeconds: best.predictedMigrationSeconds, score: best.score } } : {}),
      },
      this.policyValue.migration,
    );
    return { vmId, hostId: v.hostId, advice, forecast: this.engine.forecastVm(vmId), anomalyScore: anomaly.score };
  }

  /**
   * A Ranker for other modules (shadow placement) that ranks on our forecasts: the VM's demand and
   * the hosts' forecast peaks replace the placeholders the caller built, when we have telemetry.
   */
  forecastRanker(): Ranker {
    return {
      name: 'predictive',
      rank: (vm, hosts, context) => {
        const v = this.vms.get(vm.id);
        let view: VmView = { ...vm, ...this.constraintsOf(vm.id) };
        if (v) {
          const d = this.demandOf(v);
          view = { ...view, cpuPeakCores: d.cpuPeakCores, memoryPeakBytes: d.memoryPeakBytes, memorySizeBytes: v.memoryAllocationBytes, dirtyRateBytesPerSec: v.dirtyRateBytesPerSec };
        }
        // The caller's host views carry host load as its own config decides (placement_uses_host_load).
        const byHost = this.vmsByHost();
        return this.ranker.rank(view, hosts.map((h) => this.enrichHost(h, byHost.get(h.id) ?? [], vm.id, false)), context);
      },
    };
  }
}

/**
 * A host's GPUs minus those its VMs hold, device by device (facts list every GPU, passed through
 * or not). Every VM here counts, the ranked one too: on its source it is rejected anyway.
 */
function withoutHeldGpus(hostGpus: readonly string[] | undefined, here: readonly VmInfo[]): readonly string[] | undefined {
  if (!hostGpus || hostGpus.length === 0) return hostGpus;
  const free = [...hostGpus];
  for (const v of here) {
    for (const model of v.gpuModels ?? []) {
      const at = free.indexOf(model);
      if (at >= 0) free.splice(at, 1);
    }
  }
  return free;
}

// The ranking loop shared by the rankers: hard constraints first (each rejection with its reason),
// then a weighted score of the survivors, a top-k selection, and the score breakdown of the ones
// returned. Pure logic; hosts are compiled once (host-table.ts).

import { compileHosts, countModels, HostTable, missingFlags, missingGpus, vmFlagMask } from './host-table';
import { migrationCostScore, predictMigrationSeconds } from './migration-cost';
import {
  DEFAULT_WEIGHTS,
  HostView,
  RankContext,
  RankedDestination,
  RankResult,
  REJECT_REASONS,
  RejectedDestination,
  RejectReason,
  ScoreBreakdown,
  ScoreComponent,
  ScoreWeights,
  VmView,
} from './types';

export const DEFAULT_HEADROOM_FRACTION = 0.1;
const SIMILARITY_SAME_MODEL = 1;
const SIMILARITY_SAME_FAMILY = 0.6;
const SIMILARITY_COMPATIBLE = 0.2;
/** Prior of the history component: a host with no record scores (0+1)/(0+2) = 0.5. */
const HISTORY_PRIOR = 1;

export type ScoreMode = 'predictive' | 'capacity';

const tables = new WeakMap<readonly HostView[], HostTable>();

/** The compiled table of a host list, cached while the same array is passed again. */
export function hostTableOf(hosts: readonly HostView[]): HostTable {
  let t = tables.get(hosts);
  if (!t) {
    t = compileHosts(hosts);
    tables.set(hosts, t);
  }
  return t;
}

interface Prepared {
  table: HostTable;
  weights: ScoreWeights;
  weightSum: number;
  headroom: number;
  historyScore: Float64Array;
  historyCounts: Array<[number, number]>;
  /** Per-host part of the score that does not depend on the VM (history, health). */
  hostStatic: Float64Array;
  mode: ScoreMode;
}

export function prepare(hosts: readonly HostView[], context: RankContext, mode: ScoreMode): Prepared {
  const table = hostTableOf(hosts);
  const weights: ScoreWeights =
    mode === 'capacity'
      ? { headroom: 1, similarity: 0, migrationCost: 0, warmShadow: 0, history: 0, health: 0, togetherness: 0 }
      : { ...DEFAULT_WEIGHTS, ...context.weights };
  const weightSum = Object.values(weights).reduce((a, b) => a + b, 0) || 1;
  const historyScore = new Float64Array(table.count);
  const historyCounts: Array<[number, number]> = [];
  for (let i = 0; i < table.count; i++) {
    const rec = context.history?.(hosts[i].id);
    const s = rec?.successes ?? 0;
    const f = rec?.failures ?? 0;
    historyCounts.push([s, f]);
    historyScore[i] = (s + HISTORY_PRIOR) / (s + f + 2 * HISTORY_PRIOR);
  }
  const hostStatic = new Float64Array(table.count);
  for (let i = 0; i < table.count; i++) hostStatic[i] = weights.history * historyScore[i] + weights.health * (1 - table.failureRisk[i]);
  return { table, weights, weightSum, headroom: context.headroomFraction ?? DEFAULT_HEADROOM_FRACTION, historyScore, historyCounts, hostStatic, mode };
}

const GIB = 1024 ** 3;
const pct = (v: number) => `${Math.round(v * 100)}%`;

function rejectDetail(reason: RejectReason, vm: VmView, t: HostTable, i: number, headroom: number): string {
  const h = t.hosts[i];
  switch (reason) {
    case 'HOST_DOWN':
      return 'host is down';
    case 'SOURCE_HOST':
      return 'host is the VM\'s source';
    case 'CPU_CAPACITY':
      return `CPU: forecast peak ${h.cpuPeakCores.toFixed(1)} + VM ${vm.cpuPeakCores.toFixed(1)} cores exceeds ${(h.cpuCapacityCores * (1 - headroom)).toFixed(1)} of ${h.cpuCapacityCores} (headroom ${pct(headroom)})`;
    case 'MEMORY_CAPACITY':
      return `memory: forecast peak ${(h.memoryPeakBytes / GIB).toFixed(1)} + VM ${(vm.memoryPeakBytes / GIB).toFixed(1)} GiB exceeds ${((h.memoryCapacityBytes * (1 - headroom)) / GIB).toFixed(1)} GiB (headroom ${pct(headroom)})`;
    case 'CPU_FLAGS':
      return `CPU ${h.cpuModel} lacks flags ${missingFlags(t, i, vm.requiredCpuFlags).join(',')}`;
    case 'GPU_MODEL':
      return `no free GPU ${missingGpus(countModels(vm.gpuModels ?? []), t.gpus[i]).join(', ')}`;
    case 'FAILURE_DOMAIN':
      return `same failure domain ${h.failureDomain} as the source`;
    case 'ANTI_AFFINITY':
      return `holds a VM of keep-apart group ${(vm.keepApartGroups ?? []).filter((g) => t.groupHosts.get(g)?.[i]).join(',')}`;
  }
}

/** Ranks one VM against prepared hosts. */
export function rankPrepared(vm: VmView, p: Prepared, context: RankContext): RankResult {
  const t = p.table;
  const n = t.count;
  const w = p.weights;
  const limit = Math.max(0, Math.min(context.limit ?? n, n));
  const explain = context.explainRejected === true;
  const counts = new Int32Array(REJECT_REASONS.length);
  const rejected: RejectedDestination[] = [];
  const { mask, unknown } = vmFlagMask(t, vm.requiredCpuFlags);
  const words = t.flagWords;
  const src = t.indexOf.get(vm.sourceHostId) ?? -1;
  const srcDomain = src >= 0 ? t.failureDomain[src] : -1;
  const otherDomain = vm.requireOtherFailureDomain === true && src >= 0;
  const apart = (vm.keepApartGroups ?? []).map((g) => t.groupHosts.get(g)).filter((m): m is Uint8Array => m !== undefined);
  const together = (vm.keepTogetherGroups ?? []).map((g) => t.groupHosts.get(g)).filter((m): m is Uint8Array => m !== undefined);
  const hasTogether = (vm.keepTogetherGroups ?? []).length > 0;
  const gpus = vm.gpuModels && vm.gpuModels.length > 0 ? countModels(vm.gpuModels) : undefined;
  const keep = 1 - p.headroom;
  const needCpu = vm.cpuPeakCores;
  const needMem = vm.memoryPeakBytes;
  const model = t.modelIds.lookup(vm.cpuModel) ?? -2;
  const family = vm.cpuFamily === undefined ? -2 : (t.familyIds.lookup(vm.cpuFamily) ?? -2);
  const warm = new Set<number>();
  if (context.warmShadowHosts && p.mode === 'predictive') {
    for (const hostId of context.warmShadowHosts(vm.id)) {
      const i = t.indexOf.get(hostId);
      if (i !== undefined) warm.add(i);
    }
  }
  const anyWarm = warm.size > 0;
  // Migration time depends only on the link bandwidth: its score is computed once per link speed.
  const costByClass = t.bandwidthClasses.map((bw) => w.migrationCost * migrationCostScore(predictMigrationSeconds(vm.memorySizeBytes, vm.dirtyRateBytesPerSec, bw)));
  const hasApart = apart.length > 0;

  const topIdx = new Int32Array(limit);
  const topScore = new Float64Array(limit);
  let topLen = 0;
  let eligible = 0;
  const reject = (i: number, r: number) => {
    counts[r]++;
    if (explain) rejected.push({ hostId: t.hosts[i].id, reason: REJECT_REASONS[r], detail: rejectDetail(REJECT_REASONS[r], vm, t, i, p.headroom) });
  };

  // Typed arrays hoisted into locals: this loop runs once per VM-host pair.
  const up = t.up, cpuCap = t.cpuCap, cpuUsed = t.cpuUsed, memCap = t.memCap, memUsed = t.memUsed;
  const flags = t.flags, domains = t.failureDomain, models = t.cpuModel, families = t.cpuFamily;
  const hostStatic = p.hostStatic, bwClass = t.bandwidthClass;
  const predictive = p.mode === 'predictive';
  const wHeadroom = w.headroom, wSim = w.similarity, wTog = w.togetherness, weightSum = p.weightSum;
  const noFlags = unknown.length > 0;
  hosts: for (let i = 0; i < n; i++) {
    if (up[i] === 0) { reject(i, 0); continue; }
    if (i === src) { reject(i, 1); continue; }
    const cpuLeft = cpuCap[i] * keep - cpuUsed[i] - needCpu;
    if (cpuLeft < 0) { reject(i, 2); continue; }
    const memLeft = memCap[i] * keep - memUsed[i] - needMem;
    if (memLeft < 0) { reject(i, 3); continue; }
    if (noFlags) { reject(i, 4); continue; }
    const base = i * words;
    for (let k = 0; k < words; k++) {
      if ((mask[k] & ~flags[base + k]) !== 0) { reject(i, 4); continue hosts; }
    }
    if (gpus !== undefined && missingGpus(gpus, t.gpus[i]).length > 0) { reject(i, 5); continue; }
    if (otherDomain && domains[i] === srcDomain) { reject(i, 6); continue; }
    if (hasApart) for (const m of apart) if (m[i] === 1) { reject(i, 7); continue hosts; }
    eligible++;
    if (limit === 0) continue;
    const cpuFree = cpuLeft / (cpuCap[i] || 1);
    const memFree = memLeft / (memCap[i] || 1);
    let score = (wHeadroom * (cpuFree < memFree ? cpuFree : memFree)) / keep;
    if (predictive) {
      const sim = models[i] === model ? SIMILARITY_SAME_MODEL : families[i] === family ? SIMILARITY_SAME_FAMILY : SIMILARITY_COMPATIBLE;
      score += wSim * sim + hostStatic[i];
      if (hasTogether) for (const m of together) if (m[i] === 1) { score += wTog; break; }
      if (anyWarm && warm.has(i)) {
        score += w.warmShadow + w.migrationCost * migrationCostScore(predictMigrationSeconds(vm.memorySizeBytes, vm.dirtyRateBytesPerSec, t.bandwidth[i], true));
      } else {
        score += costByClass[bwClass[i]];
      }
    }
    score /= weightSum;
    if (topLen < limit || score > topScore[topLen - 1]) {
      let j = topLen < limit ? topLen++ : topLen - 1;
      while (j > 0 && topScore[j - 1] < score) {
        topScore[j] = topScore[j - 1];
        topIdx[j] = topIdx[j - 1];
        j--;
      }
      topScore[j] = score;
      topIdx[j] = i;
    }
  }

  const ranked: RankedDestination[] = [];
  for (let k = 0; k < topLen; k++) ranked.push(explainDestination(vm, p, topIdx[k], k + 1, warm.has(topIdx[k])));
  const rejectedCounts: Partial<Record<RejectReason, number>> = {};
  REJECT_REASONS.forEach((r, k) => {
    if (counts[k] > 0) rejectedCounts[r] = counts[k];
  });
  return { vmId: vm.id, ranked, rejected, rejectedCounts, eligible };
}

/** A score component whose sentence is written only when someone reads it (bulk ranking makes 50k of them). */
class Component implements ScoreComponent {
  private text: string | undefined;
  constructor(
    readonly value: number,
    readonly weight: number,
    readonly contribution: number,
    private readonly write: () => string,
  ) {}
  get reason(): string {
    this.text ??= this.write();
    return this.text;
  }
  toJSON(): ScoreComponent {
    return { value: this.value, weight: this.weight, contribution: this.contribution, reason: this.reason };
  }
}

class Destination implements RankedDestination {
  constructor(
    readonly hostId: string,
    readonly rank: number,
    readonly score: number,
    readonly breakdown: ScoreBreakdown,
    readonly predictedMigrationSeconds: number,
  ) {}
  /** The components' sentences, largest contribution first. */
  get reasons(): string[] {
    return Object.values(this.breakdown)
      .filter((b) => b.weight > 0)
      .sort((a, b) => b.contribution - a.contribution)
      .map((b) => b.reason);
  }
  toJSON(): RankedDestination {
    return { hostId: this.hostId, rank: this.rank, score: this.score, breakdown: this.breakdown, predictedMigrationSeconds: this.predictedMigrationSeconds, reasons: this.reasons };
  }
}

/** Full breakdown of one eligible destination (numbers now, sentences on demand). */
function explainDestination(vm: VmView, p: Prepared, i: number, rank: number, isWarm: boolean): RankedDestination {
  const t = p.table;
  const h = t.hosts[i];
  const w = p.weights;
  const keep = 1 - p.headroom;
  const cpuHeadroom = (t.cpuCap[i] * keep - t.cpuUsed[i] - vm.cpuPeakCores) / (t.cpuCap[i] || 1);
  const memHeadroom = (t.memCap[i] * keep - t.memUsed[i] - vm.memoryPeakBytes) / (t.memCap[i] || 1);
  const headroomValue = Math.min(cpuHeadroom, memHeadroom) / keep;
  const sameModel = h.cpuModel === vm.cpuModel;
  const sameFamily = vm.cpuFamily !== undefined && h.cpuFamily === vm.cpuFamily;
  const sim = sameModel ? SIMILARITY_SAME_MODEL : sameFamily ? SIMILARITY_SAME_FAMILY : SIMILARITY_COMPATIBLE;
  const seconds = predictMigrationSeconds(vm.memorySizeBytes, vm.dirtyRateBytesPerSec, t.bandwidth[i], isWarm);
  const [succ, fail] = p.historyCounts[i];
  const risk = t.failureRisk[i];
  const togetherGroups = () => (vm.keepTogetherGroups ?? []).filter((g) => t.groupHosts.get(g)?.[i] === 1);
  const together = (vm.keepTogetherGroups ?? []).some((g) => t.groupHosts.get(g)?.[i] === 1);
  const c = (value: number, weight: number, write: () => string) => new Component(value, weight / p.weightSum, (value * weight) / p.weightSum, write);
  const breakdown: ScoreBreakdown = {
    headroom: c(headroomValue, w.headroom, () => {
      const cpuAfter = (t.cpuCap[i] - t.cpuUsed[i] - vm.cpuPeakCores) / (t.cpuCap[i] || 1);
      const memAfter = (t.memCap[i] - t.memUsed[i] - vm.memoryPeakBytes) / (t.memCap[i] || 1);
      return `after placement at forecast peak: ${pct(cpuAfter)} CPU and ${pct(memAfter)} memory free`;
    }),
    similarity: c(sim, w.similarity, () =>
      sameModel ? `same CPU model (${h.cpuModel})` : sameFamily ? `same CPU family (${h.cpuFamily}), model ${h.cpuModel}` : `different CPU (${h.cpuModel}) with the required flags`,
    ),
    migrationCost: c(
      migrationCostScore(seconds),
      w.migrationCost,
      () =>
        `predicted migration ${seconds >= 3600 ? 'does not converge' : `${seconds.toFixed(1)} s`} (${(vm.memorySizeBytes / GIB).toFixed(1)} GiB, dirty ${(vm.dirtyRateBytesPerSec / 1e6).toFixed(0)} MB/s, link ${(t.bandwidth[i] / 1e6).toFixed(0)} MB/s${isWarm ? ', warm shadow' : ''})`,
    ),
    warmShadow: c(isWarm ? 1 : 0, w.warmShadow, () => (isWarm ? 'a warm shadow is already there' : 'no warm shadow there')),
    history: c(p.historyScore[i], w.history, () => (succ + fail === 0 ? 'no migration history into this host' : `${succ} of ${succ + fail} past migrations into this host succeeded`)),
    health: c(1 - risk, w.health, () => `host failure risk ${pct(risk)}`),
    togetherness: c(together ? 1 : 0, w.togetherness, () => (together ? `holds keep-together group ${togetherGroups().join(',')}` : 'no keep-together peer there')),
  };
  let score = 0;
  for (const b of Object.values(breakdown)) score += b.contribution;
  return new Destination(h.id, rank, score, breakdown, seconds);
}

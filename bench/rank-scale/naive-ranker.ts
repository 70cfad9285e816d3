// The peer of the benchmark: the straightforward ranker (an object per VM-host pair with its
// checks and score, filter, sort everything, keep the top). Same constraints and weights as ours.

import { migrationCostScore, predictMigrationSeconds } from '../../coordinator/rank/migration-cost';
import { DEFAULT_WEIGHTS, HostView, RankContext, VmView } from '../../coordinator/rank/types';

interface Candidate {
  hostId: string;
  ok: boolean;
  reason?: string;
  score: number;
}

export function naiveRank(vm: VmView, hosts: readonly HostView[], context: RankContext & { limit: number }): Candidate[] {
  const keep = 1 - (context.headroomFraction ?? 0.1);
  const w = DEFAULT_WEIGHTS;
  const sum = Object.values(w).reduce((a, b) => a + b, 0);
  const source = hosts.find((h) => h.id === vm.sourceHostId);
  const warmHosts = new Set(context.warmShadowHosts?.(vm.id) ?? []);
  const all: Candidate[] = hosts.map((h) => {
    if (!h.up) return { hostId: h.id, ok: false, reason: 'HOST_DOWN', score: 0 };
    if (h.id === vm.sourceHostId) return { hostId: h.id, ok: false, reason: 'SOURCE_HOST', score: 0 };
    const cpuLeft = h.cpuCapacityCores * keep - h.cpuPeakCores - vm.cpuPeakCores;
    const memLeft = h.memoryCapacityBytes * keep - h.memoryPeakBytes - vm.memoryPeakBytes;
    if (cpuLeft < 0) return { hostId: h.id, ok: false, reason: 'CPU_CAPACITY', score: 0 };
    if (memLeft < 0) return { hostId: h.id, ok: false, reason: 'MEMORY_CAPACITY', score: 0 };
    if (!vm.requiredCpuFlags.every((f) => h.cpuFlags.includes(f))) return { hostId: h.id, ok: false, reason: 'CPU_FLAGS', score: 0 };
    const free = [...(h.freeGpuModels ?? [])];
    const gpusFit = (vm.gpuModels ?? []).every((m) => {
      const at = free.indexOf(m);
      if (at >= 0) free.splice(at, 1);
      return at >= 0;
    });
    if (!gpusFit) return { hostId: h.id, ok: false, reason: 'GPU_MODEL', score: 0 };
    if (vm.requireOtherFailureDomain && source && source.failureDomain === h.failureDomain) return { hostId: h.id, ok: false, reason: 'FAILURE_DOMAIN', score: 0 };
    if ((vm.keepApartGroups ?? []).some((g) => (h.groups ?? []).includes(g))) return { hostId: h.id, ok: false, reason: 'ANTI_AFFINITY', score: 0 };
    const headroom = Math.min(cpuLeft / h.cpuCapacityCores, memLeft / h.memoryCapacityBytes) / keep;
    const sim = h.cpuModel === vm.cpuModel ? 1 : h.cpuFamily === vm.cpuFamily ? 0.6 : 0.2;
    const warm = warmHosts.has(h.id);
    const seconds = predictMigrationSeconds(vm.memorySizeBytes, vm.dirtyRateBytesPerSec, h.linkBandwidthBytesPerSec, warm);
    const rec = context.history?.(h.id);
    const hist = ((rec?.successes ?? 0) + 1) / ((rec?.successes ?? 0) + (rec?.failures ?? 0) + 2);
    const tog = (vm.keepTogetherGroups ?? []).some((g) => (h.groups ?? []).includes(g)) ? 1 : 0;
    const score =
      (w.headroom * headroom + w.similarity * sim + w.migrationCost * migrationCostScore(seconds) + (warm ? w.warmShadow : 0) + w.history * hist + w.health * (1 - (h.failureRisk ?? 0)) + w.togetherness * tog) / sum;
    return { hostId: h.id, ok: true, score };
  });
  return all.filter((c) => c.ok).sort((a, b) => b.score - a.score).slice(0, context.limit);
}

import test from 'ava';
import { CapacityHeadroomRanker } from '../../../coordinator/rank/capacity-headroom-ranker';
import { predictMigrationSeconds } from '../../../coordinator/rank/migration-cost';
import { PredictiveRanker } from '../../../coordinator/rank/predictive-ranker';
import { HostView, VmView } from '../../../coordinator/rank/types';

const GIB = 1024 ** 3;
const FLAGS = ['sse4_2', 'avx', 'avx2', 'aes'];

function host(id: string, over: Partial<HostView> = {}): HostView {
  return {
    id,
    up: true,
    cpuCapacityCores: 32,
    memoryCapacityBytes: 128 * GIB,
    cpuPeakCores: 8,
    memoryPeakBytes: 32 * GIB,
    cpuModel: 'EPYC-7543',
    cpuFamily: 'AMD Zen3',
    cpuFlags: FLAGS,
    failureDomain: `rack-${id}`,
    linkBandwidthBytesPerSec: 1.25e9,
    ...over,
  };
}

const vm: VmView = {
  id: 'vm1',
  sourceHostId: 'src',
  cpuPeakCores: 4,
  memoryPeakBytes: 8 * GIB,
  memorySizeBytes: 8 * GIB,
  dirtyRateBytesPerSec: 50e6,
  cpuModel: 'EPYC-7543',
  cpuFamily: 'AMD Zen3',
  requiredCpuFlags: ['avx2', 'aes'],
};

test('an incompatible CPU is never ranked, and the rejection names the missing flags', (t) => {
  const hosts = [host('src'), host('old', { cpuFlags: ['sse4_2', 'avx'], cpuModel: 'Xeon-E5' }), host('ok')];
  for (const ranker of [new PredictiveRanker(), new CapacityHeadroomRanker()]) {
    const r = ranker.rank(vm, hosts, { explainRejected: true });
    t.deepEqual(r.ranked.map((d) => d.hostId), ['ok']);
    const old = r.rejected.find((x) => x.hostId === 'old')!;
    t.is(old.reason, 'CPU_FLAGS');
    t.regex(old.detail, /lacks flags avx2,aes/);
  }
  // A flag no host has at all: everyone is rejected for it.
  const r = new PredictiveRanker().rank({ ...vm, requiredCpuFlags: ['amx_tile'] }, hosts);
  t.is(r.ranked.length, 0);
  t.is(r.rejectedCounts.CPU_FLAGS, 2);
});

test('a full host is rejected with the capacity reason; down hosts and the source are never destinations', (t) => {
  const hosts = [host('src'), host('full', { cpuPeakCores: 27 }), host('fullmem', { memoryPeakBytes: 110 * GIB }), host('down', { up: false }), host('ok')];
  const r = new PredictiveRanker().rank(vm, hosts, { explainRejected: true });
  t.deepEqual(r.ranked.map((d) => d.hostId), ['ok']);
  const by = Object.fromEntries(r.rejected.map((x) => [x.hostId, x]));
  t.is(by.full.reason, 'CPU_CAPACITY');
  t.regex(by.full.detail, /forecast peak 27\.0 \+ VM 4\.0 cores exceeds 28\.8 of 32 \(headroom 10%\)/);
  t.is(by.fullmem.reason, 'MEMORY_CAPACITY');
  t.is(by.down.reason, 'HOST_DOWN');
  t.is(by.src.reason, 'SOURCE_HOST');
  t.deepEqual(r.rejectedCounts, { HOST_DOWN: 1, SOURCE_HOST: 1, CPU_CAPACITY: 1, MEMORY_CAPACITY: 1 });
});

test('GPU model, failure domain and keep-apart groups are hard constraints', (t) => {
  const hosts = [
    host('src', { failureDomain: 'rack-1' }),
    host('samerack', { failureDomain: 'rack-1', freeGpuModels: ['A100'] }),
    host('nogpu', { failureDomain: 'rack-2' }),
    host('apart', { failureDomain: 'rack-3', freeGpuModels: ['A100'], groups: ['db'] }),
    host('good', { failureDomain: 'rack-4', freeGpuModels: ['A100'] }),
  ];
  const r = new PredictiveRanker().rank({ ...vm, gpuModels: ['A100'], requireOtherFailureDomain: true, keepApartGroups: ['db'] }, hosts, { explainRejected: true });
  t.deepEqual(r.ranked.map((d) => d.hostId), ['good']);
  const reasons = Object.fromEntries(r.rejected.map((x) => [x.hostId, x.reason]));
  t.deepEqual(reasons, { src: 'SOURCE_HOST', samerack: 'FAILURE_DOMAIN', nogpu: 'GPU_MODEL', apart: 'ANTI_AFFINITY' });
});

test('a guest with two GPUs needs two free devices of each model; the rejection names what is short', (t) => {
  const hosts = [host('src'), host('one', { freeGpuModels: ['A100', 'T4'] }), host('two', { freeGpuModels: ['A100', 'T4', 'A100'] })];
  const r = new PredictiveRanker().rank({ ...vm, gpuModels: ['A100', 'A100'] }, hosts, { explainRejected: true });
  t.deepEqual(r.ranked.map((d) => d.hostId), ['two']);
  const one = r.rejected.find((x) => x.hostId === 'one')!;
  t.is(one.reason, 'GPU_MODEL');
  t.is(one.detail, 'no free GPU A100 (2 needed, 1 free)');
  // No GPU asked for: GPU-less hosts are fine.
  t.deepEqual(new PredictiveRanker().rank({ ...vm, gpuModels: [] }, hosts).ranked.length, 2);
});

test('the idle host ranks first and its breakdown says why; the breakdown adds up to the score', (t) => {
  const hosts = [host('src'), host('busy', { cpuPeakCores: 22 }), host('idle', { cpuPeakCores: 1, memoryPeakBytes: 4 * GIB })];
  const r = new PredictiveRanker().rank(vm, hosts);
  t.deepEqual(r.ranked.map((d) => d.hostId), ['idle', 'busy']);
  const best = r.ranked[0];
  t.true(best.breakdown.headroom.value > r.ranked[1].breakdown.headroom.value);
  t.regex(best.breakdown.headroom.reason, /after placement at forecast peak: 84% CPU and 91% memory free/);
  t.regex(best.reasons[0], /after placement/);
  const sum = Object.values(best.breakdown).reduce((a, b) => a + b.contribution, 0);
  t.true(Math.abs(sum - best.score) < 1e-12);
  const weights = Object.values(best.breakdown).reduce((a, b) => a + b.weight, 0);
  t.true(Math.abs(weights - 1) < 1e-12);
  // JSON carries the sentences too (for umbractl --json and the API).
  const json = JSON.parse(JSON.stringify(best));
  t.regex(json.breakdown.similarity.reason, /same CPU model \(EPYC-7543\)/);
  t.true(Array.isArray(json.reasons) && json.reasons.length === 7);
});

test('a warm shadow, a good history and a faster link lift a destination; equal hosts tie without them', (t) => {
  const hosts = [host('src'), host('a'), host('b')];
  const plain = new PredictiveRanker().rank(vm, hosts);
  t.is(plain.ranked[0].score, plain.ranked[1].score);
  const warm = new PredictiveRanker().rank(vm, hosts, { warmShadowHosts: (v) => (v === 'vm1' ? ['b', 'not-a-host'] : []) });
  t.is(warm.ranked[0].hostId, 'b');
  t.regex(warm.ranked[0].breakdown.warmShadow.reason, /warm shadow is already there/);
  t.true(warm.ranked[0].predictedMigrationSeconds < warm.ranked[1].predictedMigrationSeconds);
  const hist = new PredictiveRanker().rank(vm, hosts, { history: (h) => (h === 'a' ? { successes: 1, failures: 4 } : { successes: 5, failures: 0 }) });
  t.is(hist.ranked[0].hostId, 'b');
  t.regex(hist.ranked[1].breakdown.history.reason, /1 of 5 past migrations into this host succeeded/);
  const link = new PredictiveRanker().rank(vm, [host('src'), host('a'), host('b', { linkBandwidthBytesPerSec: 10e9 })]);
  t.is(link.ranked[0].hostId, 'b');
});

test('capacity-headroom ranks by headroom only; the limit keeps the same top as a full sort', (t) => {
  const hosts = [host('src'), ...Array.from({ length: 40 }, (_, i) => host(`h${i}`, { cpuPeakCores: (i * 7) % 25, cpuModel: i % 2 ? 'X' : 'EPYC-7543' }))];
  const cap = new CapacityHeadroomRanker().rank(vm, hosts);
  for (let i = 1; i < cap.ranked.length; i++) t.true(cap.ranked[i - 1].score >= cap.ranked[i].score);
  t.is(cap.ranked[0].breakdown.similarity.weight, 0);
  const full = new PredictiveRanker().rank(vm, hosts);
  const top = new PredictiveRanker().rank(vm, hosts, { limit: 5 });
  t.deepEqual(top.ranked.map((d) => d.hostId), full.ranked.slice(0, 5).map((d) => d.hostId));
  t.is(top.eligible, full.eligible);
  const many = new PredictiveRanker().rankMany([vm, { ...vm, id: 'vm2' }], hosts, { limit: 3 });
  t.is(many.length, 2);
  t.deepEqual(many[0].ranked.map((d) => d.hostId), full.ranked.slice(0, 3).map((d) => d.hostId));
  t.is(many[0].rejected.length, 0);
});

test('predicted migration time grows with dirty rate and does not converge when dirtying outpaces the link', (t) => {
  const slow = predictMigrationSeconds(8 * GIB, 0, 1e9);
  t.true(Math.abs(slow - (8 * GIB) / 1e9) < 0.01);
  t.true(predictMigrationSeconds(8 * GIB, 5e8, 1e9) > slow);
  t.is(predictMigrationSeconds(8 * GIB, 2e9, 1e9), 3600);
  t.true(predictMigrationSeconds(8 * GIB, 5e7, 1e9, true) < 1);
});

test('the rank table shows each destination with its breakdown and each rejection with its reason', async (t) => {
  const { formatRankTable } = await import('../../../coordinator/rank/rank-table');
  const hosts = [host('src'), host('full', { cpuPeakCores: 30 }), host('idle', { cpuPeakCores: 0 })];
  const text = formatRankTable(new PredictiveRanker().rank(vm, hosts, { explainRejected: true }));
  t.regex(text, /destinations for vm1: 1 eligible, 1 shown/);
  t.regex(text, /1\s+idle\s+0\.\d{3}/);
  t.regex(text, /after placement at forecast peak/);
  t.regex(text, /full\s+CPU_CAPACITY\s+CPU: forecast peak 30\.0/);
  t.regex(formatRankTable(new PredictiveRanker().rank(vm, hosts)), /rejected: SOURCE_HOST 1, CPU_CAPACITY 1/);
});

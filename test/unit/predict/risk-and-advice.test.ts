import test from 'ava';
import { anomalyScore } from '../../../coordinator/predict/anomaly';
import { AffinityGroups } from '../../../coordinator/predict/affinity-groups';
import { hostFailureRisk } from '../../../coordinator/predict/failure-risk';
import { hostSaturation, VmDemandForecast } from '../../../coordinator/predict/host-saturation';
import { adviseMigration, allowedIntervals } from '../../../coordinator/predict/migration-advisor';
import { MigrationHistory } from '../../../coordinator/predict/migration-history';

const GIB = 1024 ** 3;
const vm = (id: string, cores: number, spread = 0.5): VmDemandForecast => ({ vmId: id, cpuPeakCores: cores, cpuPeakUpperCores: cores + spread, memoryPeakBytes: GIB, memoryPeakUpperBytes: GIB });

test('host saturation probability rises with the forecast demand of the VMs it holds', (t) => {
  const cap = { cpuCores: 8, memoryBytes: 32 * GIB };
  const low = hostSaturation(cap, [vm('a', 1), vm('b', 1)]).probability;
  const mid = hostSaturation(cap, [vm('a', 3.5), vm('b', 3.5)]).probability;
  const high = hostSaturation(cap, [vm('a', 5), vm('b', 5)]).probability;
  t.true(low < 0.01);
  t.true(mid > low && high > mid);
  t.true(high > 0.99);
  // Memory alone can saturate too.
  const mem = hostSaturation({ cpuCores: 8, memoryBytes: 1.5 * GIB }, [vm('a', 1), vm('b', 1)]);
  t.true(mem.memoryProbability > 0.99 && mem.cpuProbability < 0.01);
});

test('anomaly score is near zero on a steady series and high on a jump', (t) => {
  const steady = Array.from({ length: 60 }, (_, i) => 20 + (i % 3));
  t.true(anomalyScore(steady).score < 0.3);
  const jump = [...steady.slice(0, 59), 90];
  t.true(anomalyScore(jump).score > 0.8);
  t.true(anomalyScore(jump).z > 0);
});

test('failure risk names the health signals that rose and stays low without them', (t) => {
  t.true(hostFailureRisk([{ timeMs: 0, edacCorrected: 5, maxTemperatureC: 50 }, { timeMs: 3_600_000, edacCorrected: 5, maxTemperatureC: 51 }]).risk < 0.01);
  const bad = hostFailureRisk([
    { timeMs: 0, edacCorrected: 0, edacUncorrected: 0, maxTemperatureC: 60 },
    { timeMs: 3_600_000, edacCorrected: 40, edacUncorrected: 1, maxTemperatureC: 90 },
  ]);
  t.true(bad.risk > 0.6);
  t.regex(bad.reasons[0], /uncorrected memory errors/);
  t.true(bad.reasons.some((r) => /temperature/.test(r)));
  t.deepEqual(hostFailureRisk([]).reasons, ['no health signals yet']);
});

test('allowed windows clip the horizon and cross midnight', (t) => {
  const day = Date.UTC(2026, 0, 5); // a Monday
  const w = allowedIntervals([{ startMinute: 22 * 60, endMinute: 2 * 60 }], day + 23 * 3_600_000, day + 27 * 3_600_000);
  t.deepEqual(w, [{ startMs: day + 23 * 3_600_000, endMs: day + 26 * 3_600_000 }]);
  t.deepEqual(allowedIntervals([{ startMinute: 600, endMinute: 660, days: [0] }], day, day + 3_600_000 * 20), []);
});

test('advice: a saturating host with a cheap destination migrates in automatic mode, recommends otherwise, and holds outside windows', (t) => {
  const host = hostSaturation({ cpuCores: 8, memoryBytes: 64 * GIB }, [vm('busy', 6), vm('other', 4)]);
  const input = {
    vmId: 'busy',
    nowMs: Date.UTC(2026, 0, 5, 12),
    horizonMinutes: 30,
    host,
    hostFailure: { risk: 0, reasons: [] },
    vmCpuPeakCores: 6,
    vmMemoryPeakBytes: GIB,
    destination: { hostId: 'idle', predictedMigrationSeconds: 4, score: 0.9 },
  };
  const auto = adviseMigration(input, { automatic: true });
  t.is(auto.decision, 'migrate');
  t.true(auto.probability > 0.9);
  t.regex(auto.reasons[0], /host saturation within 30 min/);
  t.is(adviseMigration(input, { automatic: false }).decision, 'recommend');
  const night = adviseMigration(input, { automatic: true, allowedWindows: [{ startMinute: 120, endMinute: 240 }] });
  t.is(night.decision, 'recommend');
  t.true(night.windows[0].startMs > input.nowMs);
  t.true(night.reasons.some((r) => /next opens/.test(r)));
  const calm = adviseMigration({ ...input, host: hostSaturation({ cpuCores: 64, memoryBytes: 64 * GIB }, [vm('busy', 1)]) }, { automatic: true });
  t.is(calm.decision, 'hold');
  const expensive = adviseMigration({ ...input, destination: { hostId: 'far', predictedMigrationSeconds: 600, score: 0.1 } }, { automatic: true });
  t.is(expensive.decision, 'hold');
  t.true(expensive.reasons.some((r) => /not above threshold/.test(r)));
  const lowPriority = adviseMigration({ ...input, destination: { hostId: 'idle', predictedMigrationSeconds: 60, score: 0.5 } }, { automatic: true, priorities: { busy: 0 } });
  const highPriority = adviseMigration({ ...input, destination: { hostId: 'idle', predictedMigrationSeconds: 60, score: 0.5 } }, { automatic: true, priorities: { busy: 10 } });
  t.true(highPriority.netBenefit > lowPriority.netBenefit);
});

test('migration history counts outcomes per destination within retention', (t) => {
  const h = new MigrationHistory(1000);
  h.record({ vmId: 'a', sourceHostId: 's', destinationHostId: 'd', ok: true, atMs: 0 });
  h.record({ vmId: 'b', sourceHostId: 's', destinationHostId: 'd', ok: false, atMs: 900 });
  t.deepEqual(h.stats('d', 950), { successes: 1, failures: 1 });
  t.deepEqual(h.stats('d', 1500), { successes: 0, failures: 1 });
  t.deepEqual(h.lookup(950)('d'), { successes: 1, failures: 1 });
});

test('affinity groups give keep-apart labels of a host without the VM being placed', (t) => {
  const g = new AffinityGroups();
  g.define('db', 'keep-apart', ['db1', 'db2']);
  g.define('web', 'keep-together', ['web1', 'db1']);
  t.deepEqual(g.keepApartOf('db1'), ['db']);
  t.deepEqual(g.keepTogetherOf('db1'), ['web']);
  t.deepEqual(g.hostLabels(['db1', 'x'], 'db1'), []);
  t.deepEqual(g.hostLabels(['db2']), ['db']);
  t.throws(() => g.define('db', 'keep-together', []), { message: /already keep-apart/ });
});

test('the prediction engine averages readings into 5-minute samples and forecasts VMs and hosts from them', async (t) => {
  const { PredictionEngine } = await import('../../../coordinator/predict/prediction-engine');
  const e = new PredictionEngine();
  const start = Date.UTC(2026, 0, 5);
  // 3 hours: a quiet VM and a VM that got busy for the last hour.
  for (let m = 0; m < 180; m++) {
    for (const s of [0, 30]) {
      const at = start + m * 60_000 + s * 1000;
      t.true(e.recordVmSample('quiet', at, 10, 20));
      t.true(e.recordVmSample('busy', at, m >= 120 ? 90 : 10, 20));
    }
  }
  t.false(e.recordVmSample('busy', start, 10, 20)); // late reading
  t.false(e.recordVmSample('busy', start + 181 * 60_000, Number.NaN, 20));
  const quiet = e.forecastVm('quiet')!;
  const busy = e.forecastVm('busy')!;
  t.is(quiet.samples, 36);
  t.true(Math.abs(quiet.cpu.peak - 10) < 1e-9);
  t.true(busy.cpu.peak > 80);
  const cap = { cpuCores: 3, memoryBytes: 16 * GIB }; // the busy VM alone peaks at 3.6 cores
  const calmHost = e.hostSaturation(cap, [{ vmId: 'quiet', vcpus: 2, memoryBytes: 4 * GIB }]);
  const hotHost = e.hostSaturation(cap, [{ vmId: 'busy', vcpus: 4, memoryBytes: 4 * GIB }, { vmId: 'quiet', vcpus: 2, memoryBytes: 4 * GIB }]);
  t.true(hotHost.probability > calmHost.probability);
  t.true(hotHost.probability > 0.5);
  // A VM with no samples yet counts at its full allocation.
  t.is(e.demand({ vmId: 'new', vcpus: 2, memoryBytes: GIB }).cpuPeakCores, 2);
  e.recordHealth('h1', { timeMs: 0, edacUncorrected: 0 });
  e.recordHealth('h1', { timeMs: 60_000, edacUncorrected: 2 });
  t.true(e.hostFailureRisk('h1').risk > 0.5);
  t.is(e.hostFailureRisk('h2').risk, 0);
});

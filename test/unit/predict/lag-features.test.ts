import test from 'ava';
import { FEATURE_COUNT, FEATURE_NAMES, lagFeatures } from '../../../coordinator/predict/lag-features';

const f = (row: Float64Array, name: (typeof FEATURE_NAMES)[number]) => row[FEATURE_NAMES.indexOf(name)];

test('feature rows have one value per name and are computed from the prefix only', (t) => {
  t.is(new Set(FEATURE_NAMES).size, FEATURE_COUNT);
  const series = Float64Array.from({ length: 120 }, (_, i) => 30 + (i % 7));
  const row = lagFeatures(series.subarray(0, 100));
  t.is(row.length, FEATURE_COUNT);
  const changedFuture = Float64Array.from(series);
  changedFuture.fill(99, 100);
  t.deepEqual(lagFeatures(changedFuture.subarray(0, 100)), row);
  t.true(row.every(Number.isFinite));
});

test('scale-free distances: a flat series at 40 is far from 50 (clamped), one at 49.5 is near', (t) => {
  const far = lagFeatures(new Float64Array(60).fill(40));
  // std 0 + floor 0.5: (50 - 40) / 0.5 = 20, clamped to 10.
  t.is(f(far, 'zLast4h'), 10);
  t.is(f(far, 'zMean4h'), 10);
  t.is(f(far, 'zMax1h'), 10);
  const near = lagFeatures(new Float64Array(60).fill(49.5));
  t.is(f(near, 'zLast4h'), 1);
  t.is(f(near, 'zLastStep'), 1);
  const above = lagFeatures(new Float64Array(60).fill(70));
  t.is(f(above, 'zLast4h'), -10);
});

test('scale-free distances: the same gap counts less on a volatile series than on a calm one', (t) => {
  // Both series have mean 44 over the last 4 hours; the calm one moves by 1 point, the volatile one by 10.
  const calm = Float64Array.from({ length: 96 }, (_, i) => (i % 2 === 0 ? 43 : 45));
  const volatile = Float64Array.from({ length: 96 }, (_, i) => (i % 2 === 0 ? 34 : 54));
  const c = lagFeatures(calm);
  const v = lagFeatures(volatile);
  t.is(f(c, 'mean4h'), 44);
  t.is(f(v, 'mean4h'), 44);
  // Known answers: std4h of +-1 around 44 over 48 samples is sqrt(48/47); of +-10 it is 10 sqrt(48/47).
  const s = Math.sqrt(48 / 47);
  t.true(Math.abs(f(c, 'zMean4h') - 6 / (s + 0.5)) < 1e-9);
  t.true(Math.abs(f(v, 'zMean4h') - 6 / (10 * s + 0.5)) < 1e-9);
  t.true(f(v, 'zMean4h') < 0.6 && f(c, 'zMean4h') > 3.5);
  // The volatile series already reached 54 in the last hour: its max is above the level (negative distance).
  t.true(f(v, 'zMax1h') < 0);
  // Mean absolute step: 2 on the calm series, 20 on the volatile one; last sample 45 vs 54.
  t.true(Math.abs(f(c, 'zLastStep') - 5 / 2.5) < 1e-9);
  t.true(Math.abs(f(v, 'zLastStep') - -4 / 20.5) < 1e-9);
});

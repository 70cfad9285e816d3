import test from 'ava';
import { fitGlobalForecaster } from '../../../coordinator/predict/global-boosted-forecaster';

const LEVEL = 50;
const STEPS = 6;
const LENGTH = 288;

/** A ramp from 30 up to 55 one point per sample, then back to 30: it reaches 50 within 6 samples exactly when it is at 44..49. */
function ramp(phase: number): Float64Array {
  return Float64Array.from({ length: LENGTH }, (_, t) => 30 + ((t + phase) % 26));
}

/** Hovers around 45 and drops to 35 every 20 samples; never reaches 50 (same "last" values as the ramp, no event). */
function plateau(phase: number): Float64Array {
  return Float64Array.from({ length: LENGTH }, (_, t) => ((t + phase) % 20 === 0 ? 35 : 44 + ((t * 7 + phase) % 6)));
}

function eventAt(cpu: Float64Array, t: number): boolean {
  let peak = -Infinity;
  for (let k = 1; k <= STEPS; k++) peak = Math.max(peak, cpu[t + k]);
  return cpu[t] < LEVEL && peak >= LEVEL;
}

function f1(tp: number, fp: number, fn: number): number {
  return tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
}

test('the event classifier separates a ramp about to cross 50 from a plateau at the same level, on series it never saw', (t) => {
  const train = [];
  for (let i = 0; i < 8; i++) train.push({ cpu: ramp(i * 3) }, { cpu: plateau(i * 2) });
  const fc = fitGlobalForecaster(train, { horizonSteps: STEPS, trees: 20 });
  t.true(fc.summary.positives > 0);
  t.true(fc.exceedThreshold > 0 && fc.exceedThreshold < 1);
  const unseen = [ramp(11), ramp(20), plateau(7), plateau(13)];
  let tp = 0;
  let fp = 0;
  let fn = 0;
  let ruleTp = 0;
  let ruleFp = 0;
  let ruleFn = 0;
  let events = 0;
  for (const cpu of unseen) {
    for (let o = 48; o + STEPS < LENGTH; o++) {
      if (cpu[o] >= LEVEL) continue;
      const event = eventAt(cpu, o);
      const p = fc.forecast(cpu.subarray(0, o + 1), STEPS).exceedProbability!;
      t.true(p >= 0 && p <= 1);
      const predicted = p >= fc.exceedThreshold;
      let max1h = -Infinity;
      for (let k = o - 11; k <= o; k++) max1h = Math.max(max1h, cpu[k]);
      const rule = max1h >= LEVEL;
      if (event) events++;
      if (predicted && event) tp++;
      else if (predicted) fp++;
      else if (event) fn++;
      if (rule && event) ruleTp++;
      else if (rule) ruleFp++;
      else if (event) ruleFn++;
    }
  }
  t.true(events > 40, `${events} events`);
  // Known answer: at 44..49 on a ramp the event happens, on the plateau never.
  t.true(f1(tp, fp, fn) >= 0.95, `classifier tp ${tp} fp ${fp} fn ${fn}`);
  t.true(f1(tp, fp, fn) > f1(ruleTp, ruleFp, ruleFn) + 0.2, `rule tp ${ruleTp} fp ${ruleFp} fn ${ruleFn}`);
  // Far from the level (start of the ramp) the probability is low; one step before the crossing it is high.
  const r = ramp(11);
  let early = 60;
  while (r[early] !== 32) early++;
  t.true(fc.forecast(r.subarray(0, early + 1), STEPS).exceedProbability! < 0.2);
  let late = 60;
  while (r[late] !== 49) late++;
  t.true(fc.forecast(r.subarray(0, late + 1), STEPS).exceedProbability! > 0.8);
});

test('the classifier does not depend on the regression tree count (the product fits fewer trees than the evaluation)', (t) => {
  const train = [];
  for (let i = 0; i < 6; i++) train.push({ cpu: ramp(i * 4) }, { cpu: plateau(i * 3) });
  const a = fitGlobalForecaster(train, { horizonSteps: STEPS, trees: 5 });
  const b = fitGlobalForecaster(train, { horizonSteps: STEPS, trees: 25 });
  t.is(a.exceedThreshold, b.exceedThreshold);
  const h = ramp(5).subarray(0, 120);
  t.is(a.forecast(h, STEPS).exceedProbability, b.forecast(h, STEPS).exceedProbability);
});

import test from 'ava';
import { EwmaForecaster, LastValueForecaster, MaxLastHourForecaster } from '../../../coordinator/predict/baseline-forecasters';
import { HoltWintersForecaster } from '../../../coordinator/predict/holt-winters-forecaster';
import { WindowQuantileForecaster } from '../../../coordinator/predict/window-quantile-forecaster';

const series = (n: number, f: (t: number) => number) => Float64Array.from({ length: n }, (_, t) => f(t));

test('a constant series is forecast exactly, with a zero-width interval', (t) => {
  const h = series(100, () => 20);
  for (const fc of [new LastValueForecaster(), new EwmaForecaster(), new MaxLastHourForecaster(), new HoltWintersForecaster(), new WindowQuantileForecaster()]) {
    const out = fc.forecast(h, 6);
    t.true(Math.abs(out.point - 20) < 1e-9, fc.name);
    t.true(Math.abs(out.peak - 20) < 1e-9, fc.name);
    t.true(out.pointUpper - out.pointLower < 1e-9, fc.name);
  }
});

test('Holt-Winters follows a linear trend (damped: between last value and full extrapolation)', (t) => {
  const h = series(120, (i) => 10 + 0.5 * i); // last = 69.5, undamped t+6 = 72.5
  const out = new HoltWintersForecaster({ alpha: 0.8, beta: 0.5, phi: 0.98 }).forecast(h, 6);
  t.true(out.point > 71.5 && out.point <= 72.6, `point ${out.point}`);
  t.true(out.peak >= out.point - 1e-9);
});

test('after a step, the level forecasts move to the new level', (t) => {
  const h = series(100, (i) => (i < 80 ? 10 : 40));
  t.is(new LastValueForecaster().forecast(h, 6).point, 40);
  const hw = new HoltWintersForecaster({ alpha: 0.6, beta: 0.05 }).forecast(h, 6);
  t.true(Math.abs(hw.point - 40) < 2, `hw ${hw.point}`);
  t.is(new MaxLastHourForecaster().forecast(h, 6).peak, 40);
});

test('Holt-Winters uses the season once two full seasons exist', (t) => {
  const season = 24;
  const f = (i: number) => 30 + 10 * Math.sin((2 * Math.PI * i) / season);
  const h = series(season * 6, f);
  const out = new HoltWintersForecaster({ seasonLength: season, alpha: 0.3, beta: 0.01, gamma: 0.3 }).forecast(h, 6);
  const truth = f(h.length - 1 + 6);
  t.true(Math.abs(out.point - truth) < 1.5, `point ${out.point} vs ${truth}`);
  // Without the season a level model would stay near the last value instead.
  t.true(Math.abs(h[h.length - 1] - truth) > 5);
});

test('the window quantile peak model learns regular bursts', (t) => {
  // Every 6th sample jumps by 30: the peak over the next 6 samples is always last + 30.
  const h = series(100, (i) => (i % 6 === 0 ? 40 : 10));
  const out = new WindowQuantileForecaster().forecast(h.subarray(0, 98), 6); // last = 10
  t.is(out.peak, 40);
  t.is(out.exceedProbability, 0);
  const hi = new WindowQuantileForecaster(48, 35).forecast(h.subarray(0, 98), 6);
  // 5 of 6 past windows started off-burst and rose to 40 >= 35.
  t.true(Math.abs((hi.exceedProbability ?? 0) - 5 / 6) < 0.05);
});

test('max of the last hour fires the saturation rule only at the level', (t) => {
  const h = series(30, (i) => (i === 25 ? 55 : 20));
  t.is(new MaxLastHourForecaster(50).forecast(h, 6).exceedProbability, 1);
  t.is(new MaxLastHourForecaster(60).forecast(h, 6).exceedProbability, 0);
  // The burst is older than an hour: no longer in the window.
  t.is(new MaxLastHourForecaster(50).forecast(series(50, (i) => (i === 25 ? 55 : 20)), 6).exceedProbability, 0);
});

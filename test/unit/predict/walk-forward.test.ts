import test from 'ava';
import { LastValueForecaster } from '../../../coordinator/predict/baseline-forecasters';
import { Forecast, Forecaster } from '../../../coordinator/predict/time-series';
import { TraceSeries } from '../../../coordinator/predict/trace-format';
import { assignFolds, EvaluatedModel, walkForward } from '../../../coordinator/predict/walk-forward';

function trace(id: string, f: (t: number) => number, n = 80): TraceSeries {
  const cpu = Float64Array.from({ length: n }, (_, t) => f(t));
  return { id, group: id.split('_')[1] ?? id, cpu, mem: new Float64Array(n) };
}

const flat = (steps: number, v: number): Forecast => ({ horizonSteps: steps, point: v, pointLower: v, pointUpper: v, peak: v, peakLower: v, peakUpper: v });

/** Tries every way to see past its origin: beyond the array, and through the underlying buffer. */
class PeekingForecaster implements Forecaster {
  readonly name = 'peeking';
  readonly lengths: number[] = [];
  forecast(h: ArrayLike<number>, steps: number): Forecast {
    this.lengths.push(h.length);
    const arr = h as Float64Array;
    const whole = new Float64Array(arr.buffer, 0, arr.buffer.byteLength / 8);
    let peak = -Infinity;
    for (let k = 1; k <= steps; k++) {
      const v = whole[arr.byteOffset / 8 + arr.length - 1 + k];
      if (v !== undefined) peak = Math.max(peak, v);
    }
    const future = whole[arr.byteOffset / 8 + arr.length - 1 + steps];
    return flat(steps, peak === -Infinity ? arr[arr.length - 1] : future ?? arr[arr.length - 1]);
  }
}

const fixed = (name: string, fc: Forecaster): EvaluatedModel => ({ name, role: 'candidate', forFold: () => fc });

test('a forecaster gets exactly the prefix up to its origin and cannot reach later samples', (t) => {
  const series = [trace('vm_1_1', (i) => (i * 7) % 23), trace('vm_2_1', (i) => 40 + ((i * 5) % 17))];
  const peek = new PeekingForecaster();
  const r = walkForward(series, [fixed('peeking', peek), fixed('last', new LastValueForecaster())], { horizonSteps: 6, folds: 2, firstOrigin: 48 });
  // Origins 48..73 of each 80-sample series: prefix lengths 49..74, in order.
  const expected = [...Array.from({ length: 26 }, (_, i) => 49 + i), ...Array.from({ length: 26 }, (_, i) => 49 + i)].sort((a, b) => a - b);
  t.deepEqual([...peek.lengths].sort((a, b) => a - b), expected);
  // Peeking gained nothing: its errors equal the last-value forecaster's.
  t.is(r.models[0].pointMae, r.models[1].pointMae);
  t.true(r.models[0].pointMae > 0);
});

test('a leak would be detected: the same forecaster given the whole series scores perfectly', (t) => {
  const s = trace('vm_1_1', (i) => (i * 7) % 23);
  const peek = new PeekingForecaster();
  // Handing it a view on the full series (what the evaluator never does) lets it read the future.
  const leaked = peek.forecast(s.cpu.subarray(0, 49), 6);
  t.is(leaked.point, s.cpu[48 + 6]);
});

test('models fitted across VMs are fitted per fold on other series only, and jobs never span folds', (t) => {
  const series = [1, 2, 3, 4, 5, 6].flatMap((job) => [1, 2].map((task) => trace(`vm_${job}_${task}`, (i) => (i * job) % 30)));
  const seen: Array<{ train: string[]; test: string[] }> = [];
  const model: EvaluatedModel = {
    name: 'recording',
    role: 'ours',
    forFold: (train, testSet) => {
      seen.push({ train: train.map((s) => s.id), test: testSet.map((s) => s.id) });
      return new LastValueForecaster();
    },
  };
  walkForward(series, [model], { horizonSteps: 6, folds: 3 });
  t.is(seen.length, 3);
  const allTest = seen.flatMap((f) => f.test).sort();
  t.deepEqual(allTest, series.map((s) => s.id).sort());
  for (const f of seen) {
    t.false(f.train.some((id) => f.test.includes(id)));
    const testJobs = new Set(f.test.map((id) => id.split('_')[1]));
    t.false(f.train.some((id) => testJobs.has(id.split('_')[1])));
  }
  const folds = assignFolds(series, 3);
  series.forEach((s, i) => series.forEach((o, j) => s.group === o.group && t.is(folds[i], folds[j])));
});

test('saturation events and the rule are counted as defined (below the level now, at or above within the horizon)', (t) => {
  // 50 samples at 40, then 55 at sample 60: origins 54..59 see the event ahead (6-sample horizon).
  const s = trace('vm_9_1', (i) => (i === 60 ? 55 : 40), 70);
  const r = walkForward([s], [fixed('last', new LastValueForecaster())], { horizonSteps: 6, folds: 1, firstOrigin: 48 });
  t.is(r.origins, 70 - 6 - 48);
  t.is(r.events, 6);
  t.is(r.models[0].recall, 0); // last value (40) never reaches 50
});

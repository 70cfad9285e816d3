import test from 'ava';
import { fitBoosted, predictBoosted } from '../../../coordinator/predict/gradient-boosting';

function dataset(n: number, f: (a: number, b: number) => number) {
  const x = new Float64Array(n * 2);
  const y = new Float64Array(n);
  let s = 7;
  const r = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  for (let i = 0; i < n; i++) {
    x[2 * i] = r() * 10;
    x[2 * i + 1] = r() * 10;
    y[i] = f(x[2 * i], x[2 * i + 1]);
  }
  return { rows: n, cols: 2, x, y };
}

test('absolute loss recovers a step function of one feature and ignores the other', (t) => {
  const ds = dataset(4000, (a) => (a > 5 ? 20 : 3));
  const m = fitBoosted(ds, { loss: { kind: 'absolute' }, trees: 60, depth: 2, learningRate: 0.3, minLeaf: 10 });
  t.true(Math.abs(predictBoosted(m, [8, 1]) - 20) < 0.5);
  t.true(Math.abs(predictBoosted(m, [2, 9]) - 3) < 0.5);
});

test('the median is robust to rare outliers (absolute loss)', (t) => {
  const ds = dataset(3000, (a, b) => (Math.floor(a * 1000 + b) % 50 === 0 ? 1000 : 5));
  const m = fitBoosted(ds, { loss: { kind: 'absolute' }, trees: 30, depth: 2, minLeaf: 20 });
  t.true(Math.abs(predictBoosted(m, [3, 3]) - 5) < 0.5);
});

test('quantile loss puts the 90% quantile above the median', (t) => {
  const ds = dataset(4000, (a, b) => b); // y uniform 0..10, independent of a
  const q9 = fitBoosted(ds, { loss: { kind: 'quantile', alpha: 0.9 }, trees: 40, depth: 1 });
  const v = predictBoosted(q9, [5, 50]);
  t.true(v > 8 && v < 10, `q90 ${v}`);
});

test('logistic loss separates classes and gives probabilities', (t) => {
  const ds = dataset(4000, (a, b) => (a + b > 12 ? 1 : 0));
  const m = fitBoosted(ds, { loss: { kind: 'logistic' }, trees: 80, depth: 3 });
  t.true(predictBoosted(m, [9, 9]) > 0.9);
  t.true(predictBoosted(m, [1, 2]) < 0.1);
});

test('fits are reproducible for a seed', (t) => {
  const ds = dataset(2000, (a, b) => a * b);
  const a = fitBoosted(ds, { loss: { kind: 'absolute' }, trees: 10, seed: 3 });
  const b = fitBoosted(ds, { loss: { kind: 'absolute' }, trees: 10, seed: 3 });
  t.is(predictBoosted(a, [4, 4]), predictBoosted(b, [4, 4]));
});

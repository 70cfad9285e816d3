import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { evaluateTraces, formatEvaluation } from '../../../coordinator/predict/evaluate';
import { parseEvaluateArgs, runEvaluateCommand } from '../../../coordinator/predict/evaluate-cli';
import { fitGlobalForecaster } from '../../../coordinator/predict/global-boosted-forecaster';
import { parseTrace } from '../../../coordinator/predict/trace-format';

let dir = '';

/** Series with regular bursts: every 12th sample jumps to 60 from a base of 30..45. */
function burstSeries(base: number, phase: number): string {
  const lines: string[] = [];
  for (let t = 0; t < 288; t++) lines.push(`${(t + phase) % 12 === 0 ? 60 : base + ((t * 7) % 5)} ${20 + (t % 3)}`);
  return lines.join('\n') + '\n';
}

test.before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'umbra-traces-'));
  for (let job = 1; job <= 6; job++) {
    for (let task = 1; task <= 2; task++) await writeFile(path.join(dir, `vm_${job}_${task}.txt`), burstSeries(30 + job * 2, job + task));
  }
  await writeFile(path.join(dir, 'vm_7_1.txt'), 'garbage line\n1 2 3\n' + burstSeries(40, 0));
});

test.after.always(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('trace parsing counts and drops malformed lines', (t) => {
  const p = parseTrace('vm_5_2', '1 2\nx y\n-1 3\n\n3.5 4\n1 2 3\n');
  t.deepEqual([...p.series.cpu], [1, 3.5]);
  t.is(p.malformedLines, 3);
  t.is(p.series.group, '5');
});

test('evaluation reports ours beside the baselines, held out by job, and ours learns the bursts', async (t) => {
  const r = await evaluateTraces({ tracesDir: dir, folds: 3, trees: 30, candidates: false });
  t.is(r.series, 13);
  t.is(r.malformedLines, 2);
  t.deepEqual(r.models.map((m) => m.role), ['ours', 'baseline', 'baseline', 'baseline']);
  const ours = r.models[0];
  const maxHour = r.models.find((m) => m.name === 'max of the last hour')!;
  const last = r.models.find((m) => m.name === 'last value')!;
  // The burst comes every hour: the peak over 30 min is 60 half of the time; the global model sees
  // the phase in the lags, the baselines cannot.
  t.true(ours.peakMae < maxHour.peakMae, `${ours.peakMae} vs ${maxHour.peakMae}`);
  t.true(ours.peakMae < last.peakMae);
  t.true(ours.f1 > maxHour.f1);
  t.is(r.origins, 13 * (288 - 6 - 48));
  t.regex(formatEvaluation(r), /max of the last hour/);
});

test('a global model fitted on some series forecasts another one it never saw', (t) => {
  const train = Array.from({ length: 12 }, (_, i) => i + 1).map((job) => parseTrace(`vm_${job}_1`, burstSeries(30 + (job % 4), job)).series);
  const fc = fitGlobalForecaster(train, { horizonSteps: 6 });
  const unseen = parseTrace('vm_9_1', burstSeries(33, 5)).series.cpu;
  // Origin right after a burst (sample value at base): the next burst is 11 samples away.
  let origin = 100;
  while ((origin + 5) % 12 !== 0) origin++;
  const afterBurst = fc.forecast(unseen.subarray(0, origin + 1), 6);
  // Actual peaks: 37 after a burst, 60 before one; the forecasts must fall on the right side of the midpoint.
  t.true(afterBurst.peak < 48.5, `peak ${afterBurst.peak}`);
  const beforeBurst = fc.forecast(unseen.subarray(0, origin + 8), 6);
  t.true(beforeBurst.peak > 48.5, `peak ${beforeBurst.peak}`);
  t.true(beforeBurst.peakUpper >= beforeBurst.peak && beforeBurst.peakLower <= beforeBurst.peak);
});

test('the evaluate command parses its arguments and refuses bad ones', async (t) => {
  t.deepEqual(parseEvaluateArgs(['--traces', '/x', '--horizon=60', '--folds', '4', '--json']), { traces: '/x', horizonMinutes: 60, folds: 4, candidates: true, requireTargets: false, json: true });
  t.regex((parseEvaluateArgs(['--traces', '/x', '--folds', '1']) as { error: string }).error, /at least 2/);
  t.regex((parseEvaluateArgs(['--horizon', 'abc', '--traces', 'x']) as { error: string }).error, /--horizon needs a positive number/);
  t.regex((parseEvaluateArgs([]) as { error: string }).error, /--traces DIR is required/);
  t.is(await runEvaluateCommand(['--bogus']), 2);
  t.is(await runEvaluateCommand(['--traces', path.join(dir, 'missing')]), 2);
});

// The global forecaster fitted in a worker thread is rebuilt on this side and forecasts exactly as
// one fitted in-thread on the same traces; a bad folder is an error, not a crash.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fitInWorker } from '../../../coordinator/predict/forecaster-fit-worker';
import { fitGlobalForecaster } from '../../../coordinator/predict/global-boosted-forecaster';
import { readTraceFolder } from '../../../coordinator/predict/trace-folder';

const dir = mkdtempSync(path.join(tmpdir(), 'umbra-fit-worker-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

// Daily-seasonal series with a VM-specific level and occasional bursts, two days each.
for (let v = 0; v < 12; v++) {
  const lines: string[] = [];
  for (let i = 0; i < 576; i++) {
    const season = 20 + 15 * Math.sin((2 * Math.PI * i) / 288 + v);
    const burst = (i + v * 37) % 97 < 6 ? 40 : 0;
    lines.push(`${(season + burst + (v % 4) * 5).toFixed(1)} ${(30 + v).toFixed(1)}`);
  }
  writeFileSync(path.join(dir, `vm_${1000 + v}_0.txt`), lines.join('\n') + '\n');
}

test('a worker-fitted model forecasts exactly like an in-thread fit', async (t) => {
  const job = fitInWorker(dir, 6, 8);
  const { forecaster, series } = await job.done;
  t.is(series, 12);
  const local = fitGlobalForecaster((await readTraceFolder(dir)).series, { horizonSteps: 6, trees: 8 });
  const history = Array.from({ length: 100 }, (_, i) => 25 + 10 * Math.sin(i / 9));
  t.deepEqual(forecaster.forecast(history, 6), local.forecast(history, 6));
  t.is(forecaster.name, local.name);
});

test('a folder without traces fails the job with the reason', async (t) => {
  const empty = mkdtempSync(path.join(tmpdir(), 'umbra-fit-empty-'));
  try {
    const err = await t.throwsAsync(fitInWorker(empty, 6, 4).done);
    t.regex(err!.message, /no \*\.txt trace files/);
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});

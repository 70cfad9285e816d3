// Fits the global forecaster on a trace folder in a worker thread: the fit takes seconds of CPU
// (about 11 s for the 818 gcd-vms series with 60 trees here) and must not stall the coordinator's
// event loop (heartbeats, API). The fitted model is plain data and is rebuilt on the caller's side.
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { errorMessage } from '../../shared/errors';
import { fitGlobalForecaster, GlobalBoostedForecaster } from './global-boosted-forecaster';
import { readTraceFolder } from './trace-folder';

interface FitRequest {
  dir: string;
  horizonSteps: number;
  trees: number;
}

type FitReply = { ok: true; model: Record<string, unknown>; series: number; malformedLines: number } | { ok: false; error: string };

export interface FitOutcome {
  forecaster: GlobalBoostedForecaster;
  series: number;
  malformedLines: number;
}

/** A running fit; `close()` stops it (the promise then rejects). */
export interface FitJob {
  done: Promise<FitOutcome>;
  close(): Promise<void>;
}

export function fitInWorker(dir: string, horizonSteps: number, trees: number): FitJob {
  const worker = new Worker(__filename, { workerData: { dir, horizonSteps, trees } satisfies FitRequest });
  worker.unref();
  const done = new Promise<FitOutcome>((resolve, reject) => {
    worker.once('message', (r: FitReply) => {
      if (!r.ok) return reject(new Error(r.error));
      const m = r.model as unknown as Record<string, never>;
      resolve({
        forecaster: new GlobalBoostedForecaster(m.horizonSteps, m.level, m.pointModel, m.peakModel, m.exceedModel, m.pointBand, m.peakBand, m.exceedThreshold, m.summary),
        series: r.series,
        malformedLines: r.malformedLines,
      });
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`fit worker exited with code ${code}`)));
  });
  return { done, close: async () => void (await worker.terminate()) };
}

async function runFit(req: FitRequest): Promise<FitReply> {
  try {
    const folder = await readTraceFolder(req.dir);
    const f = fitGlobalForecaster(folder.series, { horizonSteps: req.horizonSteps, trees: req.trees });
    return { ok: true, model: { ...f } as Record<string, unknown>, series: folder.series.length, malformedLines: folder.malformedLines };
  } catch (err) {
    return { ok: false, error: errorMessage(err) };
  }
}

if (!isMainThread && parentPort && (workerData as FitRequest | undefined)?.dir) {
  const port = parentPort;
  void runFit(workerData as FitRequest).then((r) => port.postMessage(r));
}

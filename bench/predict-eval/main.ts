// predict-eval: the product's walk-forward evaluation on ../shared/data/gcd-vms (beside the
// checkout): our held-out figures beside the README baselines computed in the same run.

import * as path from 'node:path';
import { printFigures, printTable } from '../lib/report';
import { evaluateTraces, formatEvaluation, TARGET_F1_GAIN, TARGET_PEAK_MAE_RATIO } from '../../coordinator/predict/evaluate';

const TRACES = process.env.UMBRA_TRACES ?? path.resolve(__dirname, '..', '..', '..', '..', 'shared', 'data', 'gcd-vms');

async function main(): Promise<void> {
  const r = await evaluateTraces({ tracesDir: TRACES, candidates: true, onProgress: (m) => console.error(m) });
  console.log(formatEvaluation(r));
  const ours = r.models.find((m) => m.role === 'ours')!;
  const by = (name: string) => r.models.find((m) => m.name === name)!;
  const maxHour = by('max of the last hour');
  const ewma = by('EWMA(0.3)');
  printTable(`predict-eval: ${r.series} VMs, horizon ${r.horizonMinutes} min, ${r.folds}-fold by job (held-out series)`, 'best baseline', [
    { metric: 'point CPU MAE at horizon', ours: ours.pointMae, peer: ewma.pointMae, unit: 'pp (peer: EWMA 0.3)' },
    { metric: 'peak CPU MAE over horizon', ours: ours.peakMae, peer: maxHour.peakMae, unit: 'pp (peer: max last hour)', target: `<= ${(TARGET_PEAK_MAE_RATIO * maxHour.peakMae).toFixed(3)}` },
    { metric: 'saturation precision', ours: ours.precision, peer: maxHour.precision, unit: '(peer: rule max1h >= 50)' },
    { metric: 'saturation recall', ours: ours.recall, peer: maxHour.recall, unit: '' },
    { metric: 'saturation F1', ours: ours.f1, peer: maxHour.f1, unit: '', target: `>= ${(maxHour.f1 + TARGET_F1_GAIN).toFixed(3)}` },
    { metric: 'point 80% interval coverage', ours: ours.pointCoverage80, unit: 'share' },
  ]);
  printFigures({
    series: r.series,
    origins: r.origins,
    events: r.events,
    horizon_min: r.horizonMinutes,
    folds: r.folds,
    ours_point_mae_pp: +ours.pointMae.toFixed(4),
    ewma_point_mae_pp: +ewma.pointMae.toFixed(4),
    ours_peak_mae_pp: +ours.peakMae.toFixed(4),
    maxhour_peak_mae_pp: +maxHour.peakMae.toFixed(4),
    peak_mae_ratio: +r.targets.peakMaeRatio.toFixed(4),
    ours_f1: +ours.f1.toFixed(4),
    rule_f1: +maxHour.f1.toFixed(4),
    f1_gain: +r.targets.f1Gain.toFixed(4),
    peak_target_met: r.targets.peakMaeMet,
    f1_target_met: r.targets.f1Met,
    elapsed_ms: r.elapsedMs,
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

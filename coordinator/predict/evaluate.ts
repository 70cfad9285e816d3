// The product's evaluation (`umbractl predict evaluate`): reads a trace folder, runs the
// walk-forward comparison of our forecaster against the README baselines, and reports the targets.

import { InvalidArgumentError } from '../../shared/errors';
import { EwmaForecaster, LastValueForecaster, MaxLastHourForecaster } from './baseline-forecasters';
import { fitGlobalForecaster } from './global-boosted-forecaster';
import { HoltWintersForecaster } from './holt-winters-forecaster';
import { DEFAULT_HORIZON_MINUTES, DEFAULT_SATURATION_PERCENT, horizonSteps } from './time-series';
import { readTraceFolder } from './trace-folder';
import { DEFAULT_FIRST_ORIGIN, DEFAULT_FOLDS, EvaluatedModel, ModelFigures, walkForward } from './walk-forward';
import { WindowQuantileForecaster } from './window-quantile-forecaster';

/** Issue 4 targets. */
export const TARGET_PEAK_MAE_RATIO = 0.85;
export const TARGET_F1_GAIN = 0.1;

export interface EvaluateOptions {
  tracesDir: string;
  horizonMinutes?: number;
  /** k-fold by job: the global model of fold k is fitted on the other k-1 folds. */
  folds?: number;
  firstOrigin?: number;
  level?: number;
  /** Trees per boosted model (fewer = faster fit). */
  trees?: number;
  /** Include the extra local candidates (window quantile, Holt-Winters) in the table. */
  candidates?: boolean;
  /** Print the report (a table, or one JSON document when json is set). */
  print?: boolean;
  json?: boolean;
  onProgress?: (message: string) => void;
}

export interface EvaluationReport {
  tracesDir: string;
  series: number;
  malformedLines: number;
  horizonMinutes: number;
  horizonSteps: number;
  folds: number;
  origins: number;
  events: number;
  models: ModelFigures[];
  targets: {
    peakMaeOurs: number;
    peakMaeBaseline: number;
    peakMaeRatio: number;
    peakMaeRatioTarget: number;
    peakMaeMet: boolean;
    f1Ours: number;
    f1Baseline: number;
    f1Gain: number;
    f1GainTarget: number;
    f1Met: boolean;
  };
  elapsedMs: number;
}

export const OURS_NAME = 'umbra global boosted (held-out VMs)';

/** The models compared: ours (fitted per fold on the other folds), the README baselines, local candidates. */
export function evaluationModels(steps: number, level: number, trees: number | undefined, candidates: boolean): EvaluatedModel[] {
  const fixed = (name: string, role: EvaluatedModel['role'], f: () => ReturnType<EvaluatedModel['forFold']>): EvaluatedModel => ({
    name,
    role,
    forFold: () => f(),
  });
  const models: EvaluatedModel[] = [
    {
      name: OURS_NAME,
      role: 'ours',
      forFold: (train, test) => {
        const testIds = new Set(test.map((s) => s.id));
        if (train.some((s) => testIds.has(s.id))) throw new Error('global model would be fitted on evaluated series');
        return fitGlobalForecaster(train, { horizonSteps: steps, level, trees });
      },
    },
    fixed('last value', 'baseline', () => new LastValueForecaster()),
    fixed('EWMA(0.3)', 'baseline', () => new EwmaForecaster(0.3)),
    fixed('max of the last hour', 'baseline', () => new MaxLastHourForecaster(level)),
  ];
  if (candidates) {
    models.push(fixed('window quantile (local)', 'candidate', () => new WindowQuantileForecaster(undefined, level)));
    models.push(fixed('Holt-Winters damped (local)', 'candidate', () => new HoltWintersForecaster({ level })));
  }
  return models;
}

export async function evaluateTraces(options: EvaluateOptions): Promise<EvaluationReport> {
  const started = Date.now();
  const horizonMinutes = options.horizonMinutes ?? DEFAULT_HORIZON_MINUTES;
  if (!(horizonMinutes > 0)) throw new InvalidArgumentError('horizonMinutes', 'must be a positive number of minutes');
  const folds = options.folds ?? DEFAULT_FOLDS;
  if (!Number.isInteger(folds) || folds < 2) throw new InvalidArgumentError('folds', 'must be an integer >= 2 (the global model is fitted on other folds)');
  const level = options.level ?? DEFAULT_SATURATION_PERCENT;
  const steps = horizonSteps(horizonMinutes);
  const folder = await readTraceFolder(options.tracesDir);
  const models = evaluationModels(steps, level, options.trees, options.candidates ?? true);
  const result = walkForward(folder.series, models, {
    horizonSteps: steps,
    folds,
    firstOrigin: options.firstOrigin ?? DEFAULT_FIRST_ORIGIN,
    level,
    onFold: (f, n) => options.onProgress?.(`fold ${f + 1}/${n}: fitting on the other folds, evaluating this one`),
  });
  const ours = result.models.find((m) => m.role === 'ours')!;
  const maxHour = result.models.find((m) => m.name === 'max of the last hour')!;
  const report: EvaluationReport = {
    tracesDir: options.tracesDir,
    series: result.series,
    malformedLines: folder.malformedLines,
    horizonMinutes,
    horizonSteps: steps,
    folds: result.folds,
    origins: result.origins,
    events: result.events,
    models: result.models,
    targets: {
      peakMaeOurs: ours.peakMae,
      peakMaeBaseline: maxHour.peakMae,
      peakMaeRatio: ours.peakMae / maxHour.peakMae,
      peakMaeRatioTarget: TARGET_PEAK_MAE_RATIO,
      peakMaeMet: ours.peakMae <= TARGET_PEAK_MAE_RATIO * maxHour.peakMae,
      f1Ours: ours.f1,
      f1Baseline: maxHour.f1,
      f1Gain: ours.f1 - maxHour.f1,
      f1GainTarget: TARGET_F1_GAIN,
      f1Met: ours.f1 >= maxHour.f1 + TARGET_F1_GAIN,
    },
    elapsedMs: Date.now() - started,
  };
  if (options.print) console.log(options.json ? JSON.stringify(report) : formatEvaluation(report));
  return report;
}

function fmt(v: number, digits = 3): string {
  return v.toFixed(digits);
}

/** The side-by-side table people read. */
export function formatEvaluation(r: EvaluationReport): string {
  const header = ['model', 'role', 'point MAE', 'peak MAE', 'cover80', 'precision', 'recall', 'F1'];
  const rows = r.models.map((m) => [m.name, m.role, fmt(m.pointMae), fmt(m.peakMae), m.role === 'ours' || m.role === 'candidate' ? fmt(m.pointCoverage80, 2) : '-', fmt(m.precision), fmt(m.recall), fmt(m.f1)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (c: string[]) => c.map((x, i) => x.padEnd(widths[i])).join('  ');
  const t = r.targets;
  return [
    `walk-forward evaluation of ${r.series} series in ${r.tracesDir}: horizon ${r.horizonMinutes} min (${r.horizonSteps} samples), ${r.folds}-fold by job, ${r.origins} origins, ${r.events} saturation events (${fmt((100 * r.events) / Math.max(1, r.origins), 2)}%)`,
    line(header),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.map(line),
    '',
    `peak MAE: ours ${fmt(t.peakMaeOurs)} vs max-of-last-hour ${fmt(t.peakMaeBaseline)} = ${fmt(t.peakMaeRatio)}x (target <= ${t.peakMaeRatioTarget}x): ${t.peakMaeMet ? 'MET' : 'NOT MET'}`,
    `saturation F1: ours ${fmt(t.f1Ours)} vs rule ${fmt(t.f1Baseline)} = ${t.f1Gain >= 0 ? '+' : ''}${fmt(t.f1Gain)} (target >= +${t.f1GainTarget}): ${t.f1Met ? 'MET' : 'NOT MET'}`,
  ].join('\n');
}

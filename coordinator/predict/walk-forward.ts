// Walk-forward evaluation of forecasters on trace series: at each origin a forecaster receives a
// COPY of the prefix only (it cannot reach later samples), and models fitted across VMs are fitted
// per fold on the other folds' series (folds split by job group). Pure logic.

import { TraceSeries } from './trace-format';
import { DEFAULT_SATURATION_PERCENT, Forecaster } from './time-series';

/** The data README's protocol: origins from sample 48 on. */
export const DEFAULT_FIRST_ORIGIN = 48;
export const DEFAULT_FOLDS = 5;

export type ModelRole = 'ours' | 'baseline' | 'candidate';

export interface ModelFigures {
  name: string;
  role: ModelRole;
  /** MAE of the point forecast at origin + horizon, percentage points. */
  pointMae: number;
  /** MAE of the forecast peak over (origin, origin + horizon]. */
  peakMae: number;
  /** Share of actual values at the horizon inside the 80% point interval. */
  pointCoverage80: number;
  precision: number;
  recall: number;
  f1: number;
  origins: number;
}

/** Something evaluated: fixed forecasters are the same in every fold; fitted ones are made per fold. */
export interface EvaluatedModel {
  name: string;
  role: ModelRole;
  /** Returns the forecaster to use on `testSeries`, given the series it may be fitted on. */
  forFold(trainSeries: TraceSeries[], testSeries: TraceSeries[]): Forecaster & { exceedThreshold?: number };
}

export interface WalkForwardOptions {
  horizonSteps: number;
  folds?: number;
  firstOrigin?: number;
  level?: number;
  /** Called with (fold, folds) before each fold, for progress output. */
  onFold?: (fold: number, folds: number) => void;
}

export interface WalkForwardResult {
  series: number;
  folds: number;
  origins: number;
  events: number;
  models: ModelFigures[];
}

function hashString(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return h;
}

/** Fold of each series: groups (jobs) are dealt round-robin in a hashed order, so a job never spans folds. */
export function assignFolds(series: TraceSeries[], folds: number): number[] {
  const groups = [...new Set(series.map((s) => s.group))].sort((a, b) => hashString(a) - hashString(b) || a.localeCompare(b));
  const foldOf = new Map(groups.map((g, i) => [g, i % folds]));
  return series.map((s) => foldOf.get(s.group) ?? 0);
}

interface Acc {
  absPoint: number;
  absPeak: number;
  covered: number;
  n: number;
  tp: number;
  fp: number;
  fn: number;
}

export function walkForward(series: TraceSeries[], models: EvaluatedModel[], options: WalkForwardOptions): WalkForwardResult {
  const steps = options.horizonSteps;
  const level = options.level ?? DEFAULT_SATURATION_PERCENT;
  const first = options.firstOrigin ?? DEFAULT_FIRST_ORIGIN;
  const folds = Math.max(1, Math.min(options.folds ?? DEFAULT_FOLDS, new Set(series.map((s) => s.group)).size));
  const foldOf = assignFolds(series, folds);
  const acc: Acc[] = models.map(() => ({ absPoint: 0, absPeak: 0, covered: 0, n: 0, tp: 0, fp: 0, fn: 0 }));
  let origins = 0;
  let events = 0;
  for (let f = 0; f < folds; f++) {
    options.onFold?.(f, folds);
    const train = series.filter((_, i) => foldOf[i] !== f);
    const test = series.filter((_, i) => foldOf[i] === f);
    if (test.length === 0) continue;
    const forecasters = models.map((m) => m.forFold(folds === 1 ? [] : train, test));
    for (const s of test) {
      for (let t = first; t + steps < s.cpu.length; t++) {
        const history = s.cpu.slice(0, t + 1);
        const memory = s.mem.slice(0, t + 1);
        const last = s.cpu[t];
        const actualPoint = s.cpu[t + steps];
        let actualPeak = -Infinity;
        for (let k = 1; k <= steps; k++) actualPeak = Math.max(actualPeak, s.cpu[t + k]);
        const event = last < level && actualPeak >= level;
        origins++;
        if (event) events++;
        for (let m = 0; m < forecasters.length; m++) {
          const fc = forecasters[m];
          const out = fc.forecast(history, steps, { memory });
          const a = acc[m];
          a.absPoint += Math.abs(out.point - actualPoint);
          a.absPeak += Math.abs(out.peak - actualPeak);
          if (actualPoint >= out.pointLower && actualPoint <= out.pointUpper) a.covered++;
          a.n++;
          const predicted =
            last < level && (out.exceedProbability !== undefined ? out.exceedProbability >= (fc.exceedThreshold ?? 0.5) : out.peak >= level);
          if (predicted && event) a.tp++;
          else if (predicted) a.fp++;
          else if (event) a.fn++;
        }
      }
    }
  }
  const figures = models.map((m, i): ModelFigures => {
    const a = acc[i];
    const precision = a.tp + a.fp > 0 ? a.tp / (a.tp + a.fp) : 0;
    const recall = a.tp + a.fn > 0 ? a.tp / (a.tp + a.fn) : 0;
    return {
      name: m.name,
      role: m.role,
      pointMae: a.n ? a.absPoint / a.n : 0,
      peakMae: a.n ? a.absPeak / a.n : 0,
      pointCoverage80: a.n ? a.covered / a.n : 0,
      precision,
      recall,
      f1: precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0,
      origins: a.n,
    };
  });
  return { series: series.length, folds, origins, events, models: figures };
}

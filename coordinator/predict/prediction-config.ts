// The coordinator's `prediction` config section: horizon and sampling unit of the forecasts, the
// optional trace folder to fit the global forecaster on, host-load and saturation knobs, the
// evaluation interval of migration advice and the initial policy (a stored policy wins).
import type { ConfigReader } from '../../shared/config-reader';
import { DEFAULT_HORIZON_MINUTES, DEFAULT_SAMPLE_INTERVAL_MINUTES } from './time-series';

export const DEFAULT_EVALUATION_INTERVAL_MS = 30_000;
export const DEFAULT_FIT_TREES = 60;

export interface PredictionConfig {
  horizonMinutes: number;
  sampleIntervalMinutes: number;
  /** Fit the global forecaster on these traces at start; empty: the local model only. */
  fitTracesDir: string;
  fitTrees: number;
  /** False: hosts' load outside their VMs is ignored (lab namespaces share one machine). */
  useHostLoad: boolean;
  saturationFraction: number;
  evaluationIntervalMs: number;
  /** Shadow placement ranks with our forecasts ('predictive') or on capacity alone. */
  shadowRanker: 'predictive' | 'capacity';
  /** Initial policy, used until an operator sets one. */
  automatic: boolean;
  threshold: number;
}

export function parsePredictionConfig(r: ConfigReader, raw: unknown, path: string): PredictionConfig {
  const m = r.mapping(raw, path, [
    'horizon_minutes', 'sample_interval_minutes', 'fit_traces_dir', 'fit_trees', 'use_host_load', 'saturation_fraction',
    'evaluation_interval_ms', 'shadow_ranker', 'automatic', 'threshold',
  ]);
  const sampleIntervalMinutes = r.number(m, 'sample_interval_minutes', path, { default: DEFAULT_SAMPLE_INTERVAL_MINUTES, min: 0.001, max: 60 });
  const horizonMinutes = r.number(m, 'horizon_minutes', path, { default: DEFAULT_HORIZON_MINUTES, min: 0.001, max: 24 * 60 });
  if (horizonMinutes < sampleIntervalMinutes) r.problem(`${path}.horizon_minutes`, `must be at least sample_interval_minutes (${sampleIntervalMinutes})`);
  return {
    horizonMinutes,
    sampleIntervalMinutes,
    fitTracesDir: r.string(m, 'fit_traces_dir', path, { default: '' }),
    fitTrees: r.integer(m, 'fit_trees', path, { default: DEFAULT_FIT_TREES, min: 1, max: 1000 }),
    useHostLoad: r.boolean(m, 'use_host_load', path, { default: true }),
    saturationFraction: r.number(m, 'saturation_fraction', path, { default: 1, min: 0.01, max: 2 }),
    evaluationIntervalMs: r.integer(m, 'evaluation_interval_ms', path, { default: DEFAULT_EVALUATION_INTERVAL_MS, min: 100 }),
    shadowRanker: r.string(m, 'shadow_ranker', path, { default: 'predictive', oneOf: ['predictive', 'capacity'] }) as 'predictive' | 'capacity',
    automatic: r.boolean(m, 'automatic', path, { default: false }),
    threshold: r.number(m, 'threshold', path, { default: 0.2, min: -1, max: 10 }),
  };
}

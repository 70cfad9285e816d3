// Time-series vocabulary of the predictor: evenly spaced samples, forecasts with intervals, and
// the window helpers every forecaster shares. Pure logic.

/** Traces and telemetry are summarized every 5 minutes. */
export const DEFAULT_SAMPLE_INTERVAL_MINUTES = 5;
/** Default forecast horizon (DESIGN: 30 minutes). */
export const DEFAULT_HORIZON_MINUTES = 30;
/** One day of 5-minute samples: the daily season. */
export const DAILY_SEASON_SAMPLES = 288;
/** The utilization level (percent) whose crossing counts as saturation. */
export const DEFAULT_SATURATION_PERCENT = 50;

/** A forecast made at an origin for the next `horizonSteps` samples. Units are those of the series. */
export interface Forecast {
  horizonSteps: number;
  /** Point forecast of the value at origin + horizon, with an 80% interval. */
  point: number;
  pointLower: number;
  pointUpper: number;
  /** Forecast of the maximum over (origin, origin + horizon], with an 80% interval. */
  peak: number;
  peakLower: number;
  peakUpper: number;
  /** Probability that the series reaches the saturation level within the horizon, when the forecaster models it. */
  exceedProbability?: number;
}

/** A forecaster sees only a prefix of the series (samples up to and including the origin). */
export interface Forecaster {
  readonly name: string;
  forecast(history: ArrayLike<number>, horizonSteps: number, context?: ForecastContext): Forecast;
}

/** Optional companion series at the same timestamps (e.g. memory beside CPU). */
export interface ForecastContext {
  memory?: ArrayLike<number>;
}

export function horizonSteps(horizonMinutes: number, intervalMinutes = DEFAULT_SAMPLE_INTERVAL_MINUTES): number {
  return Math.max(1, Math.round(horizonMinutes / intervalMinutes));
}

/** Max of the last `n` samples of history (fewer when the history is shorter). */
export function tailMax(h: ArrayLike<number>, n: number): number {
  let m = -Infinity;
  for (let i = Math.max(0, h.length - n); i < h.length; i++) if (h[i] > m) m = h[i];
  return m === -Infinity ? 0 : m;
}

export function tailMin(h: ArrayLike<number>, n: number): number {
  let m = Infinity;
  for (let i = Math.max(0, h.length - n); i < h.length; i++) if (h[i] < m) m = h[i];
  return m === Infinity ? 0 : m;
}

export function tailMean(h: ArrayLike<number>, n: number): number {
  const start = Math.max(0, h.length - n);
  if (h.length === start) return 0;
  let s = 0;
  for (let i = start; i < h.length; i++) s += h[i];
  return s / (h.length - start);
}

export function tailStd(h: ArrayLike<number>, n: number): number {
  const start = Math.max(0, h.length - n);
  const k = h.length - start;
  if (k < 2) return 0;
  const m = tailMean(h, n);
  let s = 0;
  for (let i = start; i < h.length; i++) s += (h[i] - m) ** 2;
  return Math.sqrt(s / (k - 1));
}

/** Mean absolute one-step change over the last n samples: a robust volatility. */
export function tailMeanAbsDiff(h: ArrayLike<number>, n: number): number {
  const start = Math.max(1, h.length - n);
  if (h.length - start < 1) return 0;
  let s = 0;
  for (let i = start; i < h.length; i++) s += Math.abs(h[i] - h[i - 1]);
  return s / (h.length - start);
}

export function tailCountAtLeast(h: ArrayLike<number>, n: number, level: number): number {
  let c = 0;
  for (let i = Math.max(0, h.length - n); i < h.length; i++) if (h[i] >= level) c++;
  return c;
}

export function ewma(h: ArrayLike<number>, alpha: number): number {
  if (h.length === 0) return 0;
  let s = h[0];
  for (let i = 1; i < h.length; i++) s = alpha * h[i] + (1 - alpha) * s;
  return s;
}

/** Empirical quantile of the values (linear interpolation). */
export function quantile(values: ArrayLike<number>, q: number): number {
  if (values.length === 0) return 0;
  const s = Float64Array.from(values as ArrayLike<number>).sort();
  const pos = Math.min(s.length - 1, Math.max(0, q * (s.length - 1)));
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

/** A read-only view of the first `length` samples: what a forecaster may see at an origin. */
export function prefix(series: Float64Array, length: number): Float64Array {
  return series.subarray(0, Math.max(0, Math.min(series.length, length)));
}

export function clampPercent(v: number): number {
  return Math.max(0, v);
}

// Additive Holt-Winters with a damped trend; the seasonal part is used only when the history holds
// two full seasons (daily = 288 five-minute samples). Intervals come from quantiles of its own
// one-step residuals widened with the horizon. Pure logic.

import { DAILY_SEASON_SAMPLES, Forecast, Forecaster, quantile } from './time-series';

export interface HoltWintersOptions {
  alpha?: number;
  beta?: number;
  gamma?: number;
  /** Trend damping per step (1 = none). */
  phi?: number;
  seasonLength?: number;
  level?: number;
}

const DEFAULTS = { alpha: 0.5, beta: 0.05, gamma: 0.2, phi: 0.9, seasonLength: DAILY_SEASON_SAMPLES, level: 50 };

export interface HoltWintersState {
  level: number;
  trend: number;
  /** Seasonal offsets, indexed by (time index mod season), or empty when not seasonal. */
  season: Float64Array;
  residuals: number[];
}

export function fitHoltWinters(h: ArrayLike<number>, o: Required<HoltWintersOptions>): HoltWintersState {
  const n = h.length;
  const seasonal = n >= 2 * o.seasonLength;
  const season = new Float64Array(seasonal ? o.seasonLength : 0);
  if (seasonal) {
    let mean = 0;
    for (let i = 0; i < o.seasonLength; i++) mean += h[i];
    mean /= o.seasonLength;
    for (let i = 0; i < o.seasonLength; i++) season[i] = h[i] - mean;
  }
  let level = n > 0 ? h[0] - (seasonal ? season[0] : 0) : 0;
  let trend = 0;
  const residuals: number[] = [];
  for (let t = 1; t < n; t++) {
    const s = seasonal ? season[t % o.seasonLength] : 0;
    const predicted = level + o.phi * trend + s;
    residuals.push(h[t] - predicted);
    const prevLevel = level;
    level = o.alpha * (h[t] - s) + (1 - o.alpha) * (level + o.phi * trend);
    trend = o.beta * (level - prevLevel) + (1 - o.beta) * o.phi * trend;
    if (seasonal) season[t % o.seasonLength] = o.gamma * (h[t] - level) + (1 - o.gamma) * s;
  }
  return { level, trend, season, residuals };
}

export class HoltWintersForecaster implements Forecaster {
  readonly name = 'Holt-Winters (damped, residual quantiles)';
  private readonly o: Required<HoltWintersOptions>;
  constructor(options: HoltWintersOptions = {}) {
    this.o = { ...DEFAULTS, ...options };
  }

  forecast(h: ArrayLike<number>, steps: number): Forecast {
    const st = fitHoltWinters(h, this.o);
    const n = h.length;
    const path: number[] = [];
    let damp = 0;
    for (let k = 1; k <= steps; k++) {
      damp += this.o.phi ** k;
      const s = st.season.length > 0 ? st.season[(n - 1 + k) % this.o.seasonLength] : 0;
      path.push(Math.max(0, st.level + damp * st.trend + s));
    }
    const recent = st.residuals.slice(-96);
    const widen = Math.sqrt(steps);
    const lo = recent.length > 8 ? quantile(recent, 0.1) * widen : 0;
    const hi = recent.length > 8 ? quantile(recent, 0.9) * widen : 0;
    const point = path[path.length - 1];
    // The peak of a noisy path sits above the smooth path: add the one-step upper residual.
    const peak = Math.max(...path) + (recent.length > 8 ? Math.max(0, quantile(recent, 0.75)) : 0);
    const peakUpper = Math.max(...path) + Math.max(0, hi);
    const sigma = (hi - lo) / 2.563 || 1e-9;
    const exceed = 1 - normalCdf((this.o.level - peak) / sigma);
    return {
      horizonSteps: steps,
      point,
      pointLower: Math.max(0, point + lo),
      pointUpper: point + hi,
      peak,
      peakLower: Math.max(0, Math.max(...path) + lo),
      peakUpper,
      exceedProbability: exceed,
    };
  }
}

/** Standard normal CDF (Abramowitz-Stegun 7.1.26 through erf). */
export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return z >= 0 ? 0.5 * (1 + y) : 0.5 * (1 - y);
}

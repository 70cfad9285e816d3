// Local peak model: the distribution of "rise over the next horizon" seen in the series' own
// recent past gives the peak forecast and its interval. Needs no fitting across VMs. Pure logic.

import { Forecast, Forecaster, quantile } from './time-series';

/** How far back the rises are collected (4 hours of 5-minute samples). */
export const WINDOW_LOOKBACK_SAMPLES = 48;
const MIN_WINDOWS = 4;

export class WindowQuantileForecaster implements Forecaster {
  readonly name = 'window quantile (local)';
  constructor(
    private readonly lookback = WINDOW_LOOKBACK_SAMPLES,
    private readonly level = 50,
  ) {}

  forecast(h: ArrayLike<number>, steps: number): Forecast {
    const n = h.length;
    const last = n > 0 ? h[n - 1] : 0;
    const rises: number[] = [];
    const changes: number[] = [];
    // Windows that end at or before the origin: origin o, its future (o, o+steps] all inside the prefix.
    for (let o = Math.max(0, n - 1 - this.lookback); o + steps <= n - 1; o++) {
      let m = -Infinity;
      for (let k = 1; k <= steps; k++) m = Math.max(m, h[o + k]);
      rises.push(m - h[o]);
      changes.push(h[o + steps] - h[o]);
    }
    if (rises.length < MIN_WINDOWS) {
      return { horizonSteps: steps, point: last, pointLower: last, pointUpper: last, peak: last, peakLower: last, peakUpper: last };
    }
    const peak = last + quantile(rises, 0.5);
    const peakUpper = last + quantile(rises, 0.9);
    const exceed = rises.filter((r) => last + r >= this.level).length / rises.length;
    return {
      horizonSteps: steps,
      point: last + quantile(changes, 0.5),
      pointLower: Math.max(0, last + quantile(changes, 0.1)),
      pointUpper: last + quantile(changes, 0.9),
      peak,
      peakLower: Math.max(0, last + quantile(rises, 0.1)),
      peakUpper,
      exceedProbability: exceed,
    };
  }
}

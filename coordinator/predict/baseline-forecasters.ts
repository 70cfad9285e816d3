// The baselines named in the data README (last value, EWMA, max of the last hour) as forecasters,
// so the evaluation computes them exactly as it computes ours. Pure logic.

import { DEFAULT_SATURATION_PERCENT, ewma, Forecast, Forecaster, tailMax } from './time-series';

/** One hour of 5-minute samples. */
export const LAST_HOUR_SAMPLES = 12;
/** EWMA smoothing of the README's baseline. */
export const BASELINE_EWMA_ALPHA = 0.3;

function flat(horizonSteps: number, point: number, peak: number, exceed?: number): Forecast {
  return { horizonSteps, point, pointLower: point, pointUpper: point, peak, peakLower: peak, peakUpper: peak, exceedProbability: exceed };
}

function last(h: ArrayLike<number>): number {
  return h.length > 0 ? h[h.length - 1] : 0;
}

export class LastValueForecaster implements Forecaster {
  readonly name = 'last value';
  forecast(h: ArrayLike<number>, steps: number): Forecast {
    return flat(steps, last(h), last(h));
  }
}

export class EwmaForecaster implements Forecaster {
  readonly name: string;
  constructor(private readonly alpha = BASELINE_EWMA_ALPHA) {
    this.name = `EWMA(${alpha})`;
  }
  forecast(h: ArrayLike<number>, steps: number): Forecast {
    const v = ewma(h, this.alpha);
    return flat(steps, v, v);
  }
}

/** Peak = max of the last hour; the saturation rule "max of the last hour >= level". */
export class MaxLastHourForecaster implements Forecaster {
  readonly name = 'max of the last hour';
  constructor(private readonly level = DEFAULT_SATURATION_PERCENT) {}
  forecast(h: ArrayLike<number>, steps: number): Forecast {
    const m = tailMax(h, LAST_HOUR_SAMPLES);
    return flat(steps, m, m, m >= this.level ? 1 : 0);
  }
}

// Anomaly score of the newest sample against the series' recent behaviour (robust z-score on the
// median and MAD of a trailing window). Pure logic.

import { quantile } from './time-series';

export const ANOMALY_WINDOW_SAMPLES = 48;
/** z at which the score reaches 0.5. */
export const ANOMALY_HALF_Z = 4;
const MAD_TO_SIGMA = 1.4826;
const MAD_FLOOR = 0.5;

export interface AnomalyScore {
  /** Robust z-score of the newest sample (signed). */
  z: number;
  /** 0 (normal) .. 1 (extreme). */
  score: number;
}

export function anomalyScore(history: ArrayLike<number>, window = ANOMALY_WINDOW_SAMPLES): AnomalyScore {
  const n = history.length;
  if (n < 4) return { z: 0, score: 0 };
  const past = Array.prototype.slice.call(history, Math.max(0, n - 1 - window), n - 1) as number[];
  const med = quantile(past, 0.5);
  const mad = quantile(past.map((v) => Math.abs(v - med)), 0.5);
  const z = (history[n - 1] - med) / Math.max(MAD_FLOOR, MAD_TO_SIGMA * mad);
  const a = Math.abs(z);
  return { z, score: a / (a + ANOMALY_HALF_Z) };
}

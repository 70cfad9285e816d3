// Lag features of a utilization series at a forecast origin, computed from the prefix only. The
// global boosted model is fitted on these rows across VMs. Pure logic.

import { ewma, quantile, tailCountAtLeast, tailMax, tailMean, tailMeanAbsDiff, tailMin, tailStd } from './time-series';

export const FEATURE_NAMES = [
  'last',
  'lag1',
  'lag2',
  'lag3',
  'max1h',
  'max2h',
  'max4h',
  'maxAll',
  'mean1h',
  'mean4h',
  'min1h',
  'std1h',
  'std4h',
  'absDiff1h',
  'absDiff4h',
  'ewma03',
  'over50_1h',
  'over50_4h',
  'over45_4h',
  'gap50',
  'slope1h',
  'max30m',
  'over50_30m',
  'over50_all',
  'sinceOver50',
  'crossUp50_all',
  'crossUp50_4h',
  'near50_1h',
  'gap50near',
  'gapMax1hNear',
  'gapMax30mNear',
  'gapP90_4hNear',
  'memLast',
  'memDelta1h',
  'zLast4h',
  'zMean1h',
  'zMean4h',
  'zEwma',
  'zMax1h',
  'zLastStep',
] as const;

export const FEATURE_COUNT = FEATURE_NAMES.length;

/** Minimum history a feature row needs; shorter prefixes use what exists. */
export const FEATURE_MIN_HISTORY = 1;

function at(h: ArrayLike<number>, back: number): number {
  const i = h.length - 1 - back;
  return i >= 0 ? h[i] : h.length > 0 ? h[0] : 0;
}

/** Writes the feature row of history `cpu` (and optional `mem`) into out[offset..]. */
export function writeLagFeatures(cpu: ArrayLike<number>, mem: ArrayLike<number> | undefined, out: Float64Array, offset = 0): void {
  const last = at(cpu, 0);
  let o = offset;
  out[o++] = last;
  out[o++] = at(cpu, 1);
  out[o++] = at(cpu, 2);
  out[o++] = at(cpu, 3);
  out[o++] = tailMax(cpu, 12);
  out[o++] = tailMax(cpu, 24);
  out[o++] = tailMax(cpu, 48);
  out[o++] = tailMax(cpu, cpu.length);
  out[o++] = tailMean(cpu, 12);
  out[o++] = tailMean(cpu, 48);
  out[o++] = tailMin(cpu, 12);
  out[o++] = tailStd(cpu, 12);
  out[o++] = tailStd(cpu, 48);
  out[o++] = tailMeanAbsDiff(cpu, 12);
  out[o++] = tailMeanAbsDiff(cpu, 48);
  out[o++] = ewma(cpu.length > 48 ? Array.prototype.slice.call(cpu, cpu.length - 48) : cpu, 0.3);
  out[o++] = tailCountAtLeast(cpu, 12, 50);
  out[o++] = tailCountAtLeast(cpu, 48, 50);
  out[o++] = tailCountAtLeast(cpu, 48, 45);
  out[o++] = 50 - last;
  out[o++] = (last - at(cpu, 11)) / 11;
  out[o++] = tailMax(cpu, 6);
  out[o++] = tailCountAtLeast(cpu, 6, 50);
  out[o++] = cpu.length > 0 ? tailCountAtLeast(cpu, cpu.length, 50) / cpu.length : 0;
  out[o++] = samplesSinceAtLeast(cpu, 50);
  out[o++] = upCrossings(cpu, cpu.length, 50);
  out[o++] = upCrossings(cpu, 48, 50);
  out[o++] = tailCountAtLeast(cpu, 12, 40) - tailCountAtLeast(cpu, 12, 50);
  // Clamped distances to the level keep the quantile bins of the trees dense where events happen.
  out[o++] = clampNear(50 - last);
  out[o++] = clampNear(50 - tailMax(cpu, 12));
  out[o++] = clampNear(50 - tailMax(cpu, 6));
  out[o++] = clampNear(50 - tailQuantile(cpu, 48, 0.9));
  out[o++] = mem && mem.length > 0 ? at(mem, 0) : 0;
  out[o++] = mem && mem.length > 0 ? at(mem, 0) - at(mem, 11) : 0;
  // Scale-free distances to the level: how many of this series' own deviations (std or mean step)
  // separate it from 50. Trees cannot form ratios of two features, and a gap of 5 points means
  // something else on a flat series than on a spiky one; on gcd-vms (5 folds by job, 3 seeds)
  // these raised the held-out saturation F1 by about 0.01.
  const std1h = out[offset + F_STD_1H] + Z_SCALE_FLOOR;
  const std4h = out[offset + F_STD_4H] + Z_SCALE_FLOOR;
  out[o++] = clampZ((50 - last) / std4h);
  out[o++] = clampZ((50 - out[offset + F_MEAN_1H]) / std1h);
  out[o++] = clampZ((50 - out[offset + F_MEAN_4H]) / std4h);
  out[o++] = clampZ((50 - out[offset + F_EWMA]) / (out[offset + F_ABS_DIFF_4H] + Z_SCALE_FLOOR));
  out[o++] = clampZ((50 - out[offset + F_MAX_1H]) / std4h);
  out[o++] = clampZ((50 - last) / (out[offset + F_ABS_DIFF_4H] + Z_SCALE_FLOOR));
}

/** Added to a deviation before dividing by it (percentage points), so a flat series gives finite z. */
const Z_SCALE_FLOOR = 0.5;
const Z_RANGE = 10;
const F_STD_1H = FEATURE_NAMES.indexOf('std1h');
const F_STD_4H = FEATURE_NAMES.indexOf('std4h');
const F_MEAN_1H = FEATURE_NAMES.indexOf('mean1h');
const F_MEAN_4H = FEATURE_NAMES.indexOf('mean4h');
const F_EWMA = FEATURE_NAMES.indexOf('ewma03');
const F_ABS_DIFF_4H = FEATURE_NAMES.indexOf('absDiff4h');
const F_MAX_1H = FEATURE_NAMES.indexOf('max1h');

function clampZ(v: number): number {
  return Math.max(-Z_RANGE, Math.min(Z_RANGE, v));
}

const NEAR_RANGE = 8;

function clampNear(v: number): number {
  return Math.max(-NEAR_RANGE, Math.min(NEAR_RANGE, v));
}

function tailQuantile(h: ArrayLike<number>, n: number, q: number): number {
  const start = Math.max(0, h.length - n);
  return quantile(Array.prototype.slice.call(h, start) as number[], q);
}

/** Samples since the series was last at or above `level` (history length + 1 when never). */
function samplesSinceAtLeast(h: ArrayLike<number>, level: number): number {
  for (let i = h.length - 1; i >= 0; i--) if (h[i] >= level) return h.length - 1 - i;
  return h.length + 1;
}

/** Upward crossings of `level` within the last n samples. */
function upCrossings(h: ArrayLike<number>, n: number, level: number): number {
  let c = 0;
  for (let i = Math.max(1, h.length - n); i < h.length; i++) if (h[i - 1] < level && h[i] >= level) c++;
  return c;
}

export function lagFeatures(cpu: ArrayLike<number>, mem?: ArrayLike<number>): Float64Array {
  const out = new Float64Array(FEATURE_COUNT);
  writeLagFeatures(cpu, mem, out, 0);
  return out;
}

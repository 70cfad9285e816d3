// Small gradient-boosted regression trees on histogram-binned features (absolute, quantile and
// logistic losses): the global model fitted across VMs. Pure logic, no I/O.

/** Tunables. */
export const DEFAULT_MAX_BINS = 255;
export const DEFAULT_TREES = 120;
export const DEFAULT_DEPTH = 4;
export const DEFAULT_LEARNING_RATE = 0.1;
export const DEFAULT_MIN_LEAF = 40;
export const DEFAULT_SUBSAMPLE = 0.5;
const NEWTON_LAMBDA = 1.0;

export type BoostLoss = { kind: 'absolute' } | { kind: 'quantile'; alpha: number } | { kind: 'logistic' };

export interface BoostOptions {
  loss: BoostLoss;
  trees?: number;
  depth?: number;
  learningRate?: number;
  minLeaf?: number;
  subsample?: number;
  maxBins?: number;
  /** Seed of the row subsampling, so fits are reproducible. */
  seed?: number;
}

/** A fitted tree in flat arrays: node i splits on feature[i] at threshold[i] (x <= t goes left); leaves have feature -1. */
interface FlatTree {
  feature: Int32Array;
  threshold: Float64Array;
  left: Int32Array;
  right: Int32Array;
  value: Float64Array;
}

export interface BoostedModel {
  readonly loss: BoostLoss;
  readonly base: number;
  readonly trees: FlatTree[];
  readonly featureCount: number;
}

/** A dense row-major feature matrix. */
export interface Dataset {
  rows: number;
  cols: number;
  x: Float64Array; // rows * cols
  y: Float64Array; // rows
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function quantileOf(values: Float64Array | number[], q: number): number {
  const s = Float64Array.from(values).sort();
  if (s.length === 0) return 0;
  const pos = Math.min(s.length - 1, Math.max(0, q * (s.length - 1)));
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

/** Cut points per feature from quantiles of a sample; bin b holds values in (cut[b-1], cut[b]]. */
function computeCuts(ds: Dataset, maxBins: number): Float64Array[] {
  const cuts: Float64Array[] = [];
  const step = Math.max(1, Math.floor(ds.rows / 20000));
  for (let f = 0; f < ds.cols; f++) {
    const sample: number[] = [];
    for (let i = 0; i < ds.rows; i += step) sample.push(ds.x[i * ds.cols + f]);
    sample.sort((a, b) => a - b);
    const c: number[] = [];
    for (let b = 1; b < maxBins; b++) {
      const v = sample[Math.floor((b * (sample.length - 1)) / maxBins)];
      if (c.length === 0 || v > c[c.length - 1]) c.push(v);
    }
    cuts.push(Float64Array.from(c));
  }
  return cuts;
}

function binOf(cuts: Float64Array, v: number): number {
  let lo = 0;
  let hi = cuts.length; // answer in [0, cuts.length]
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (v <= cuts[mid]) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

function sigmoid(z: number): number {
  return 1 / (1 + Math.exp(-z));
}

/** Fits a boosted model; y is the target (0/1 for logistic). */
export function fitBoosted(ds: Dataset, options: BoostOptions): BoostedModel {
  const trees = options.trees ?? DEFAULT_TREES;
  const depth = options.depth ?? DEFAULT_DEPTH;
  const lr = options.learningRate ?? DEFAULT_LEARNING_RATE;
  const minLeaf = options.minLeaf ?? DEFAULT_MIN_LEAF;
  const subsample = options.subsample ?? DEFAULT_SUBSAMPLE;
  const maxBins = Math.min(255, options.maxBins ?? DEFAULT_MAX_BINS);
  const rand = mulberry32(options.seed ?? 1);
  const { rows, cols } = ds;
  const loss = options.loss;

  const cuts = computeCuts(ds, maxBins);
  const bins = new Uint8Array(rows * cols); // column-major for cache-friendly histograms
  for (let f = 0; f < cols; f++) {
    for (let i = 0; i < rows; i++) bins[f * rows + i] = binOf(cuts[f], ds.x[i * cols + f]);
  }

  let base: number;
  if (loss.kind === 'logistic') {
    let pos = 0;
    for (let i = 0; i < rows; i++) pos += ds.y[i];
    const p = Math.min(1 - 1e-6, Math.max(1e-6, pos / Math.max(1, rows)));
    base = Math.log(p / (1 - p));
  } else {
    base = quantileOf(ds.y, loss.kind === 'quantile' ? loss.alpha : 0.5);
  }
  const pred = new Float64Array(rows).fill(base);
  const grad = new Float64Array(rows);
  const hess = new Float64Array(rows);
  const out: FlatTree[] = [];
  const histG = new Float64Array(256);
  const histH = new Float64Array(256);
  const histN = new Int32Array(256);

  for (let t = 0; t < trees; t++) {
    for (let i = 0; i < rows; i++) {
      const r = ds.y[i] - pred[i];
      if (loss.kind === 'logistic') {
        const p = sigmoid(pred[i]);
        grad[i] = p - ds.y[i];
        hess[i] = Math.max(1e-6, p * (1 - p));
      } else if (loss.kind === 'absolute') {
        grad[i] = r > 0 ? -1 : r < 0 ? 1 : 0;
        hess[i] = 1;
      } else {
        grad[i] = r > 0 ? -loss.alpha : 1 - loss.alpha;
        hess[i] = 1;
      }
    }
    const picked: number[] = [];
    for (let i = 0; i < rows; i++) if (rand() < subsample) picked.push(i);

    const feature: number[] = [];
    const threshold: number[] = [];
    const left: number[] = [];
    const right: number[] = [];
    const value: number[] = [];
    const newNode = (): number => {
      feature.push(-1);
      threshold.push(0);
      left.push(-1);
      right.push(-1);
      value.push(0);
      return feature.length - 1;
    };
    const leafValue = (idx: Uint32Array): number => {
      if (loss.kind === 'logistic') {
        let g = 0;
        let h = 0;
        for (let k = 0; k < idx.length; k++) {
          g += grad[idx[k]];
          h += hess[idx[k]];
        }
        return -g / (h + NEWTON_LAMBDA);
      }
      const res = new Float64Array(idx.length);
      for (let k = 0; k < idx.length; k++) res[k] = ds.y[idx[k]] - pred[idx[k]];
      return quantileOf(res, loss.kind === 'quantile' ? loss.alpha : 0.5);
    };
    // Leaf values are computed on all rows routed to the leaf (not only the subsample) for stability.
    const grow = (node: number, idx: Uint32Array, level: number): void => {
      if (level >= depth || idx.length < 2 * minLeaf) {
        value[node] = leafValue(idx);
        return;
      }
      let G = 0;
      let H = 0;
      for (let k = 0; k < idx.length; k++) {
        G += grad[idx[k]];
        H += hess[idx[k]];
      }
      const parentScore = (G * G) / (H + NEWTON_LAMBDA);
      let bestGain = 1e-9;
      let bestF = -1;
      let bestBin = -1;
      for (let f = 0; f < cols; f++) {
        const nb = cuts[f].length + 1;
        histG.fill(0, 0, nb);
        histH.fill(0, 0, nb);
        histN.fill(0, 0, nb);
        const off = f * rows;
        for (let k = 0; k < idx.length; k++) {
          const i = idx[k];
          const b = bins[off + i];
          histG[b] += grad[i];
          histH[b] += hess[i];
          histN[b]++;
        }
        let gl = 0;
        let hl = 0;
        let nl = 0;
        for (let b = 0; b < nb - 1; b++) {
          gl += histG[b];
          hl += histH[b];
          nl += histN[b];
          if (nl < minLeaf) continue;
          if (idx.length - nl < minLeaf) break;
          const gr = G - gl;
          const hr = H - hl;
          const gain = (gl * gl) / (hl + NEWTON_LAMBDA) + (gr * gr) / (hr + NEWTON_LAMBDA) - parentScore;
          if (gain > bestGain) {
            bestGain = gain;
            bestF = f;
            bestBin = b;
          }
        }
      }
      if (bestF < 0) {
        value[node] = leafValue(idx);
        return;
      }
      const off = bestF * rows;
      let nl = 0;
      for (let k = 0; k < idx.length; k++) if (bins[off + idx[k]] <= bestBin) nl++;
      const li = new Uint32Array(nl);
      const ri = new Uint32Array(idx.length - nl);
      let a = 0;
      let c = 0;
      for (let k = 0; k < idx.length; k++) {
        const i = idx[k];
        if (bins[off + i] <= bestBin) li[a++] = i;
        else ri[c++] = i;
      }
      feature[node] = bestF;
      threshold[node] = cuts[bestF][bestBin];
      const l = newNode();
      const r = newNode();
      left[node] = l;
      right[node] = r;
      grow(l, li, level + 1);
      grow(r, ri, level + 1);
    };
    const root = newNode();
    grow(root, Uint32Array.from(picked), 0);
    const tree: FlatTree = {
      feature: Int32Array.from(feature),
      threshold: Float64Array.from(threshold),
      left: Int32Array.from(left),
      right: Int32Array.from(right),
      value: Float64Array.from(value).map((v) => v * lr),
    };
    out.push(tree);
    for (let i = 0; i < rows; i++) pred[i] += evalTree(tree, ds.x, i * cols);
  }
  return { loss, base, trees: out, featureCount: cols };
}

function evalTree(tree: FlatTree, x: ArrayLike<number>, offset: number): number {
  let n = 0;
  while (tree.feature[n] >= 0) {
    n = x[offset + tree.feature[n]] <= tree.threshold[n] ? tree.left[n] : tree.right[n];
  }
  return tree.value[n];
}

/** Raw model output for one feature row (log-odds for logistic). */
export function predictRaw(model: BoostedModel, row: ArrayLike<number>, offset = 0): number {
  let s = model.base;
  for (const t of model.trees) s += evalTree(t, row, offset);
  return s;
}

/** The prediction in the target's unit: a value, or a probability for the logistic loss. */
export function predictBoosted(model: BoostedModel, row: ArrayLike<number>, offset = 0): number {
  const raw = predictRaw(model, row, offset);
  return model.loss.kind === 'logistic' ? sigmoid(raw) : raw;
}

// Adaptive round interval (pure): rounds come as fast as the bandwidth budget allows for what the
// last round cost on the wire, and the dirty rate is measured for lag reporting.

export const DEFAULT_MIN_ROUND_INTERVAL_MS = 50;
export const DEFAULT_MAX_ROUND_INTERVAL_MS = 2000;
/** Weight of the newest sample in the dirty-rate average. */
const DIRTY_RATE_EWMA_WEIGHT = 0.3;

export interface RoundPacerOptions {
  /** Bytes per second this VM's replication may use on the wire (per shadow); 0 = unlimited. */
  bandwidthBudgetBytesPerSec: number;
  minIntervalMs?: number;
  maxIntervalMs?: number;
}

export class RoundPacer {
  private dirtyRate = 0;
  private readonly minMs: number;
  private readonly maxMs: number;

  constructor(private readonly options: RoundPacerOptions) {
    this.minMs = options.minIntervalMs ?? DEFAULT_MIN_ROUND_INTERVAL_MS;
    this.maxMs = options.maxIntervalMs ?? DEFAULT_MAX_ROUND_INTERVAL_MS;
  }

  /** Dirty bytes per second, smoothed. */
  get dirtyRateBytesPerSec(): number {
    return this.dirtyRate;
  }

  /**
   * Records a round (bytes found dirty since the previous round, bytes it put on the wire, time
   * since the previous round) and returns the delay before the next one.
   */
  next(round: { dirtyBytes: number; wireBytes: number; elapsedMs: number }): number {
    const rate = round.elapsedMs > 0 ? (round.dirtyBytes * 1000) / round.elapsedMs : 0;
    this.dirtyRate = this.dirtyRate === 0 ? rate : this.dirtyRate + DIRTY_RATE_EWMA_WEIGHT * (rate - this.dirtyRate);
    const budget = this.options.bandwidthBudgetBytesPerSec;
    // Time the budget needs to carry what the last round sent: waiting that long keeps the
    // average at or below the budget, and lets a busy guest batch more rewrites per round.
    const needMs = budget > 0 ? (round.wireBytes * 1000) / budget : 0;
    return Math.min(this.maxMs, Math.max(this.minMs, needMs));
  }
}

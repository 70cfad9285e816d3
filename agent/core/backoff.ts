// Exponential backoff with full jitter, for reconnecting to the coordinator.

export const INITIAL_BACKOFF_MS = 200;
export const MAX_BACKOFF_MS = 10_000;
export const BACKOFF_MULTIPLIER = 2;

export class Backoff {
  private attempt = 0;

  constructor(
    private readonly initialMs = INITIAL_BACKOFF_MS,
    private readonly maxMs = MAX_BACKOFF_MS,
    private readonly random: () => number = Math.random,
  ) {}

  /** Delay before the next attempt; grows until reset(). */
  next(): number {
    const ceiling = Math.min(this.maxMs, this.initialMs * BACKOFF_MULTIPLIER ** this.attempt);
    this.attempt++;
    // Jitter spreads a fleet's reconnects after a coordinator restart.
    return Math.round(ceiling / 2 + (this.random() * ceiling) / 2);
  }

  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}

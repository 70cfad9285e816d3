// Predicted live-migration time from memory size, dirty-page rate and link bandwidth (pre-copy
// model: each round resends what was dirtied during the previous one). Pure logic.

/** Rounds of pre-copy before the model gives up converging. */
export const MAX_PRECOPY_ROUNDS = 30;
/** Dirty memory small enough to send in the stop-and-copy pause. */
export const STOP_COPY_BYTES = 8 * 1024 * 1024;
/** Stand-in for "does not converge": long enough to rank last on cost. */
export const NON_CONVERGING_SECONDS = 3600;
/** Migration time at which the cost component is worth 0.5. */
export const REFERENCE_MIGRATION_SECONDS = 10;

/** Seconds to move `memoryBytes` over `bandwidth` while the guest dirties `dirtyRate` bytes/s. */
export function predictMigrationSeconds(memoryBytes: number, dirtyRateBytesPerSec: number, bandwidthBytesPerSec: number, warmShadow = false): number {
  if (!(bandwidthBytesPerSec > 0)) return NON_CONVERGING_SECONDS;
  const ratio = Math.max(0, dirtyRateBytesPerSec) / bandwidthBytesPerSec;
  // A warm shadow already holds the memory: only what is dirtied since the last sync moves.
  let toSend = warmShadow ? Math.min(memoryBytes, Math.max(0, dirtyRateBytesPerSec)) : Math.max(0, memoryBytes);
  let seconds = 0;
  for (let round = 0; round < MAX_PRECOPY_ROUNDS; round++) {
    const t = toSend / bandwidthBytesPerSec;
    seconds += t;
    toSend = Math.min(memoryBytes, t * Math.max(0, dirtyRateBytesPerSec));
    if (toSend <= STOP_COPY_BYTES) return seconds + toSend / bandwidthBytesPerSec;
    if (ratio >= 1) return NON_CONVERGING_SECONDS;
  }
  return NON_CONVERGING_SECONDS;
}

/** 1 for an instant migration, 0.5 at the reference time, towards 0 for long ones. */
export function migrationCostScore(seconds: number): number {
  return 1 / (1 + seconds / REFERENCE_MIGRATION_SECONDS);
}

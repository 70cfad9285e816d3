// Longest silence between consecutive answers seen by the prober (pure).

export interface Answer {
  /** Receive time, ms on a monotonic clock. */
  atMs: number;
  /** Which host answered. */
  tag: string;
}

export interface GapStats {
  answers: number;
  maxGapMs: number;
  /** Host that answered right after the longest gap (the new holder after a switchover). */
  afterGapTag?: string;
  beforeGapTag?: string;
  /** Longest silence spanning a change of answering host: the switchover itself, without scheduling noise elsewhere. */
  switchoverGapMs?: number;
  /** Receive times (same clock as atMs) of the answers either side of the switchover gap. */
  switchoverGapFromMs?: number;
  switchoverGapToMs?: number;
}

export function longestGap(answers: readonly Answer[]): GapStats {
  let maxGapMs = 0;
  let at = -1;
  let switchoverGapMs: number | undefined;
  let sw = -1;
  for (let i = 1; i < answers.length; i++) {
    const gap = answers[i].atMs - answers[i - 1].atMs;
    if (answers[i].tag !== answers[i - 1].tag && gap > (switchoverGapMs ?? -1)) {
      switchoverGapMs = gap;
      sw = i;
    }
    if (gap > maxGapMs) {
      maxGapMs = gap;
      at = i;
    }
  }
  return {
    answers: answers.length,
    maxGapMs,
    ...(switchoverGapMs !== undefined ? { switchoverGapMs, switchoverGapFromMs: answers[sw - 1].atMs, switchoverGapToMs: answers[sw].atMs } : {}),
    ...(at > 0 ? { afterGapTag: answers[at].tag, beforeGapTag: answers[at - 1].tag } : {}),
  };
}

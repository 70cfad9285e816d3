// The report of a client that probed a guest every period: answers, losses and silences, read
// from the native prober's output by guest-prober.ts (the lab's client and the vm-switchover
// bench's). Pure.

/** Silences longer than this are listed, so a caller can discount windows it caused itself. */
export const NOTABLE_GAP_MS = 5;
const MAX_GAPS_KEPT = 10000;
const MAX_LOST_RANGES = 20;

export interface ProbeReport {
  periodMs: number;
  sent: number;
  /** Distinct probes answered. */
  answered: number;
  /** Echoes received (duplicates included). */
  received: number;
  lost: number;
  /** Sequence ranges of the lost probes, "a-b" or "a". */
  lostRanges: string[];
  maxGapMs: number;
  maxGapStartMs: number;
  maxGapEndMs: number;
  /** Silence still open when sending stopped (a guest that never came back). */
  openGapMs: number;
  /** Every silence longer than NOTABLE_GAP_MS, as [startMs, endMs]. */
  gaps: Array<[number, number]>;
}

/** An echo: when it arrived (ms, monotonic clock) and the probe's sequence number. */
export interface ProbeAnswer {
  atMs: number;
  seq: number;
}

/** "3-5", "9" for [3, 4, 5, 9]. */
export function ranges(sorted: number[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    out.push(i === j ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return out;
}

/**
 * The report of probes 0..sent-1, given their echoes in arrival order and when sending stopped
 * (same clock). A silence still open at the stop counts too (a guest that never came back).
 */
export function probeReport(answers: readonly ProbeAnswer[], sent: number, periodMs: number, stoppedAtMs: number): ProbeReport {
  const answered = new Set<number>();
  const gaps: Array<[number, number]> = [];
  let maxGap = { ms: 0, start: 0, end: 0 };
  let lastAt: number | undefined;
  for (const a of answers) {
    answered.add(a.seq);
    if (lastAt !== undefined) {
      const gap = a.atMs - lastAt;
      if (gap > NOTABLE_GAP_MS && gaps.length < MAX_GAPS_KEPT) gaps.push([lastAt, a.atMs]);
      if (gap > maxGap.ms) maxGap = { ms: gap, start: lastAt, end: a.atMs };
    }
    lastAt = a.atMs;
  }
  const open = lastAt === undefined ? 0 : Math.max(0, stoppedAtMs - lastAt);
  if (open > maxGap.ms) maxGap = { ms: open, start: lastAt ?? 0, end: stoppedAtMs };
  const lost: number[] = [];
  for (let i = 0; i < sent; i++) if (!answered.has(i)) lost.push(i);
  return {
    periodMs,
    sent,
    answered: answered.size,
    received: answers.length,
    lost: lost.length,
    lostRanges: ranges(lost).slice(0, MAX_LOST_RANGES),
    maxGapMs: maxGap.ms,
    maxGapStartMs: maxGap.start,
    maxGapEndMs: maxGap.end,
    openGapMs: open,
    gaps,
  };
}

// Per-VM migration advice: the probability that the VM should move within the horizon (host
// saturation it would relieve, host failure risk, its own anomaly), the reasons, the predicted
// migration windows inside the operator's allowed time windows, and the decision from predicted
// benefit minus migration cost against a threshold (automatic mode migrates, otherwise recommend).

import { InvalidArgumentError } from '../../shared/errors';
import { AnomalyScore } from './anomaly';
import { FailureRisk } from './failure-risk';
import { HostSaturation } from './host-saturation';

/** Tunables. */
export const DEFAULT_NET_BENEFIT_THRESHOLD = 0.2;
export const DEFAULT_PRIORITY = 5;
export const MAX_PRIORITY = 10;
/** Migration seconds that cost as much as a certain saturation of a default-priority VM. */
export const MIGRATION_SECONDS_AT_FULL_COST = 120;
/** Anomaly score above which the anomaly is named as a reason and adds risk. */
export const ANOMALY_REASON_SCORE = 0.5;
const ANOMALY_WEIGHT = 0.3;
const MINUTES_PER_DAY = 1440;
/** How far ahead a window is searched when none is open within the horizon. */
const WINDOW_SEARCH_DAYS = 7;

/** An allowed time window in UTC minutes of the day; `days` (0 = Sunday) limits it to some weekdays. */
export interface TimeWindow {
  startMinute: number;
  endMinute: number;
  days?: number[];
}

export interface MigrationPolicy {
  /** Trigger migrations automatically; otherwise only recommend (and prepare shadows). */
  automatic: boolean;
  netBenefitThreshold?: number;
  /** Empty or absent: any time. */
  allowedWindows?: TimeWindow[];
  /** Per-VM priority 0..10 (higher = protected first). */
  priorities?: Record<string, number>;
  defaultPriority?: number;
}

export interface VmRiskInput {
  vmId: string;
  nowMs: number;
  horizonMinutes: number;
  host: HostSaturation;
  hostFailure: FailureRisk;
  anomaly?: AnomalyScore;
  /** This VM's forecast peak CPU: how much moving it relieves its host. */
  vmCpuPeakCores: number;
  vmMemoryPeakBytes: number;
  /** The best destination from the ranker, if any passed the constraints. */
  destination?: { hostId: string; predictedMigrationSeconds: number; score: number };
}

export type MigrationDecision = 'migrate' | 'recommend' | 'hold';

export interface MigrationAdvice {
  vmId: string;
  probability: number;
  reasons: string[];
  /** Predicted windows to migrate in (policy-respecting), earliest first. */
  windows: Array<{ startMs: number; endMs: number }>;
  decision: MigrationDecision;
  benefit: number;
  cost: number;
  netBenefit: number;
  priority: number;
  destinationHostId?: string;
}

export function validatePolicy(p: MigrationPolicy): void {
  (p.allowedWindows ?? []).forEach((w, i) => {
    for (const k of ['startMinute', 'endMinute'] as const) {
      if (!Number.isInteger(w[k]) || w[k] < 0 || w[k] > MINUTES_PER_DAY) throw new InvalidArgumentError(`policy.allowedWindows[${i}].${k}`, 'must be an integer minute of the day 0..1440');
    }
    if (w.days?.some((d) => !Number.isInteger(d) || d < 0 || d > 6)) throw new InvalidArgumentError(`policy.allowedWindows[${i}].days`, 'days are 0 (Sunday) .. 6');
  });
  for (const [vm, pr] of Object.entries(p.priorities ?? {})) {
    if (!(pr >= 0 && pr <= MAX_PRIORITY)) throw new InvalidArgumentError(`policy.priorities.${vm}`, `must be 0..${MAX_PRIORITY}`);
  }
}

/** Intervals within [fromMs, toMs) that the allowed windows cover (all of it when there are none). */
export function allowedIntervals(windows: readonly TimeWindow[] | undefined, fromMs: number, toMs: number): Array<{ startMs: number; endMs: number }> {
  if (!windows || windows.length === 0) return toMs > fromMs ? [{ startMs: fromMs, endMs: toMs }] : [];
  const out: Array<{ startMs: number; endMs: number }> = [];
  const dayMs = MINUTES_PER_DAY * 60_000;
  for (let day = Math.floor(fromMs / dayMs) - 1; day * dayMs < toMs; day++) {
    const weekday = (new Date(day * dayMs).getUTCDay() + 7) % 7;
    for (const w of windows) {
      if (w.days && !w.days.includes(weekday)) continue;
      const start = day * dayMs + w.startMinute * 60_000;
      // A window whose end is before its start crosses midnight.
      const end = day * dayMs + (w.endMinute > w.startMinute ? w.endMinute : w.endMinute + MINUTES_PER_DAY) * 60_000;
      const s = Math.max(start, fromMs);
      const e = Math.min(end, toMs);
      if (e > s) out.push({ startMs: s, endMs: e });
    }
  }
  out.sort((a, b) => a.startMs - b.startMs);
  const merged: typeof out = [];
  for (const iv of out) {
    const lastIv = merged[merged.length - 1];
    if (lastIv && iv.startMs <= lastIv.endMs) lastIv.endMs = Math.max(lastIv.endMs, iv.endMs);
    else merged.push({ ...iv });
  }
  return merged;
}

const pct = (v: number) => `${Math.round(v * 100)}%`;

export function adviseMigration(input: VmRiskInput, policy: MigrationPolicy): MigrationAdvice {
  const priority = policy.priorities?.[input.vmId] ?? policy.defaultPriority ?? DEFAULT_PRIORITY;
  const reasons: string[] = [];
  const h = input.host;
  // Moving this VM relieves its host in proportion to how much of the expected excess it covers.
  const excessShare = (excess: number, own: number) => (excess <= 0 ? 1 : Math.min(1, own / excess));
  const relief = Math.max(
    h.cpuProbability * excessShare(h.cpuExcessCores, input.vmCpuPeakCores),
    h.memoryProbability * excessShare(h.memoryExcessBytes, input.vmMemoryPeakBytes),
  );
  if (h.probability >= 0.05) {
    reasons.push(
      `host saturation within ${input.horizonMinutes} min: ${pct(h.probability)} (CPU peak ${pct(h.cpuPeakFraction)}, memory peak ${pct(h.memoryPeakFraction)} of capacity)`,
    );
  }
  const fail = input.hostFailure.risk;
  if (fail >= 0.05) reasons.push(`host failure risk ${pct(fail)}: ${input.hostFailure.reasons.join('; ')}`);
  const anomaly = input.anomaly && input.anomaly.score >= ANOMALY_REASON_SCORE ? input.anomaly.score : 0;
  if (anomaly > 0) reasons.push(`unusual load on this VM (robust z ${input.anomaly!.z.toFixed(1)})`);
  const probability = 1 - (1 - relief) * (1 - fail) * (1 - ANOMALY_WEIGHT * anomaly * h.probability);

  const priorityWeight = (priority + 1) / (DEFAULT_PRIORITY + 1);
  const benefit = probability * priorityWeight;
  const seconds = input.destination?.predictedMigrationSeconds ?? Infinity;
  const cost = Math.min(1, seconds / MIGRATION_SECONDS_AT_FULL_COST);
  const netBenefit = benefit - cost;
  const threshold = policy.netBenefitThreshold ?? DEFAULT_NET_BENEFIT_THRESHOLD;

  const horizonEnd = input.nowMs + input.horizonMinutes * 60_000;
  let windows = allowedIntervals(policy.allowedWindows, input.nowMs, horizonEnd);
  if (windows.length === 0) {
    windows = allowedIntervals(policy.allowedWindows, input.nowMs, input.nowMs + WINDOW_SEARCH_DAYS * MINUTES_PER_DAY * 60_000).slice(0, 1);
    if (windows.length > 0) reasons.push(`no allowed window within the horizon; next opens ${new Date(windows[0].startMs).toISOString()}`);
  }
  const openNow = windows.length > 0 && windows[0].startMs <= input.nowMs;

  let decision: MigrationDecision = 'hold';
  if (!input.destination) {
    if (probability >= 0.05) reasons.push('no destination passes the constraints');
  } else if (netBenefit > threshold) {
    decision = policy.automatic && openNow ? 'migrate' : 'recommend';
    reasons.push(
      `net benefit ${netBenefit.toFixed(2)} > threshold ${threshold} (benefit ${benefit.toFixed(2)} at priority ${priority}, cost ${cost.toFixed(2)} for ~${seconds.toFixed(0)} s to ${input.destination.hostId})`,
    );
    if (policy.automatic && !openNow) reasons.push('automatic mode waits for the next allowed window');
  } else if (probability >= 0.05) {
    reasons.push(`net benefit ${netBenefit.toFixed(2)} not above threshold ${threshold}`);
  }
  if (reasons.length === 0) reasons.push(`no risk found within ${input.horizonMinutes} min`);
  return { vmId: input.vmId, probability, reasons, windows, decision, benefit, cost, netBenefit, priority, destinationHostId: input.destination?.hostId };
}

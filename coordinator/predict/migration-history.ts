// Outcomes of past migrations per destination host (which destinations worked, which failed),
// kept for a bounded time; the ranker reads it through RankContext.history. Pure logic.

import { DestinationRecord } from '../rank/types';

export const HISTORY_RETENTION_MS = 30 * 24 * 3600 * 1000;
const MAX_RECORDS = 100_000;

export interface MigrationOutcome {
  vmId: string;
  sourceHostId: string;
  destinationHostId: string;
  ok: boolean;
  atMs: number;
  /** Why it failed, for the operator. */
  error?: string;
}

export class MigrationHistory {
  private readonly outcomes: MigrationOutcome[] = [];

  constructor(private readonly retentionMs = HISTORY_RETENTION_MS) {}

  record(outcome: MigrationOutcome): void {
    this.outcomes.push(outcome);
    if (this.outcomes.length > MAX_RECORDS) this.outcomes.splice(0, this.outcomes.length - MAX_RECORDS);
  }

  /** Successes and failures into `hostId` within the retention window ending at nowMs. */
  stats(hostId: string, nowMs = Date.now()): DestinationRecord {
    let successes = 0;
    let failures = 0;
    for (const o of this.outcomes) {
      if (o.destinationHostId !== hostId || nowMs - o.atMs > this.retentionMs) continue;
      if (o.ok) successes++;
      else failures++;
    }
    return { successes, failures };
  }

  /** A lookup for the ranker, computed once for all hosts (so ranking stays a tight loop). */
  lookup(nowMs = Date.now()): (hostId: string) => DestinationRecord | undefined {
    const byHost = new Map<string, DestinationRecord>();
    for (const o of this.outcomes) {
      if (nowMs - o.atMs > this.retentionMs) continue;
      const r = byHost.get(o.destinationHostId) ?? { successes: 0, failures: 0 };
      if (o.ok) r.successes++;
      else r.failures++;
      byHost.set(o.destinationHostId, r);
    }
    return (hostId) => byHost.get(hostId);
  }

  recent(limit = 20): MigrationOutcome[] {
    return this.outcomes.slice(-limit).reverse();
  }
}

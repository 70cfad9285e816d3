// `umbractl rank VM [--limit N] [--json]`: destinations for a VM, best first, with the score
// breakdown and the reasons, then every rejected host with its reason (RankDestinations).
import { callUnary } from '../../shared/grpc-client';
import type { rankResultToWire } from '../api/prediction-service';
import { formatRankTable } from '../rank/rank-table';
import type { RankResult, RejectReason, ScoreBreakdown } from '../rank/types';
import type { CtlConnection } from './ctl-connection';
import { dialCoordinatorService } from './shadows-command';

export const PREDICTION_SERVICE = 'umbra.coordinator.v1.PredictionService';

export type WireRank = ReturnType<typeof rankResultToWire>;

/** The wire answer back in the ranker's shape, for the shared table. */
export function rankResultFromWire(w: WireRank): RankResult {
  return {
    vmId: w.vm_id,
    ranked: w.ranked.map((d) => ({
      hostId: d.host_id,
      rank: d.rank,
      score: d.score,
      breakdown: Object.fromEntries(d.breakdown.map((c) => [c.name, { value: c.value, weight: c.weight, contribution: c.contribution, reason: c.reason }])) as ScoreBreakdown,
      predictedMigrationSeconds: d.predicted_migration_seconds,
      reasons: d.reasons,
    })),
    rejected: w.rejected.map((x) => ({ hostId: x.host_id, reason: x.reason as RejectReason, detail: x.detail })),
    rejectedCounts: w.rejected_counts as RankResult['rejectedCounts'],
    eligible: w.eligible,
  };
}

export async function runRankCommand(conn: CtlConnection, vmId: string, opts: { json: boolean; limit: number }): Promise<number> {
  const client = dialCoordinatorService(conn, PREDICTION_SERVICE);
  try {
    const w = await callUnary<WireRank>(client, 'RankDestinations', { vm_id: vmId, limit: opts.limit, explain_rejected: true });
    if (opts.json) {
      process.stdout.write(JSON.stringify(w, null, 2) + '\n');
    } else {
      process.stdout.write(`${vmId} runs on ${w.source_host || '?'}\n`);
      process.stdout.write(formatRankTable(rankResultFromWire(w)) + '\n');
      for (const d of w.ranked.slice(0, 3)) process.stdout.write(`\n${d.rank}. ${d.host_id}:\n${d.reasons.map((r) => `   - ${r}`).join('\n')}\n`);
    }
    return w.ranked.length > 0 ? 0 : 1;
  } finally {
    client.close();
  }
}

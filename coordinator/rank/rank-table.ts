// Text table of a ranking for `umbractl rank VM`: ranked destinations with score, breakdown and
// the main reason, then the rejected hosts with theirs. (`--json` prints the RankResult itself.)

import { RankResult, REJECT_REASONS, ScoreWeights } from './types';

const COMPONENTS: Array<[keyof ScoreWeights, string]> = [
  ['headroom', 'headroom'],
  ['similarity', 'cpu'],
  ['migrationCost', 'cost'],
  ['warmShadow', 'shadow'],
  ['history', 'hist'],
  ['health', 'health'],
  ['togetherness', 'group'],
];

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (c: string[]) => c.map((x, i) => (i === c.length - 1 ? x : x.padEnd(widths[i]))).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

export function formatRankTable(r: RankResult): string {
  const out: string[] = [`destinations for ${r.vmId}: ${r.eligible} eligible, ${r.ranked.length} shown`];
  if (r.ranked.length > 0) {
    out.push(
      ...table(
        ['rank', 'host', 'score', ...COMPONENTS.map(([, n]) => n), 'migration', 'why'],
        r.ranked.map((d) => [
          String(d.rank),
          d.hostId,
          d.score.toFixed(3),
          ...COMPONENTS.map(([k]) => d.breakdown[k].contribution.toFixed(3)),
          d.predictedMigrationSeconds >= 3600 ? 'no converge' : `${d.predictedMigrationSeconds.toFixed(1)} s`,
          d.reasons[0] ?? '',
        ]),
      ),
    );
  }
  if (r.rejected.length > 0) {
    out.push('', 'rejected:');
    out.push(...table(['host', 'reason', 'detail'], r.rejected.map((x) => [x.hostId, x.reason, x.detail])));
  } else {
    const counts = REJECT_REASONS.filter((k) => r.rejectedCounts[k]).map((k) => `${k} ${r.rejectedCounts[k]}`);
    if (counts.length > 0) out.push('', `rejected: ${counts.join(', ')}`);
  }
  return out.join('\n');
}

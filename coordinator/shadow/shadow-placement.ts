// Where a VM's automatic shadows should be: the top-N ranked destinations whose score passes the
// threshold. Manual shadows are kept as they are and do not count towards N. Pure.
import type { RankedDestination } from '../rank/types';

export interface PlacementPolicy {
  /** Minimum rank score (0..1) a destination needs to hold a shadow. */
  shadowingThreshold: number;
  /** Automatic shadows per VM (top N). */
  maxShadowedVms: number;
}

export interface ExistingShadow {
  hostId: string;
  manual: boolean;
}

export interface PlacementPlan {
  place: Array<{ hostId: string; score: number }>;
  retire: string[];
  keep: string[];
}

export function planShadows(ranked: readonly RankedDestination[], existing: readonly ExistingShadow[], policy: PlacementPolicy): PlacementPlan {
  const manual = new Set(existing.filter((s) => s.manual).map((s) => s.hostId));
  const wanted = ranked
    .filter((d) => d.score >= policy.shadowingThreshold && !manual.has(d.hostId))
    .sort((a, b) => a.rank - b.rank)
    .slice(0, policy.maxShadowedVms);
  const wantedIds = new Set(wanted.map((d) => d.hostId));
  const auto = existing.filter((s) => !s.manual);
  const autoIds = new Set(auto.map((s) => s.hostId));
  return {
    place: wanted.filter((d) => !autoIds.has(d.hostId)).map((d) => ({ hostId: d.hostId, score: d.score })),
    retire: auto.filter((s) => !wantedIds.has(s.hostId)).map((s) => s.hostId),
    keep: [...manual, ...auto.filter((s) => wantedIds.has(s.hostId)).map((s) => s.hostId)],
  };
}

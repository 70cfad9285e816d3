// Where a VM's automatic shadows should be: the top-N ranked destinations whose score passes the
// threshold. Manual shadows are kept as they are and do not count towards N. Held shadows (on hosts
// whose liveness is not known yet) are kept without a verdict and fill a slot of N each. Pure.
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
  /** Manual, held and still-wanted automatic shadows. */
  keep: string[];
  /** The automatic shadows kept only because they were held (no ranking verdict on their host). */
  held: string[];
}

/**
 * `held`: hosts whose automatic shadow must not be retired now (their liveness is not known yet:
 * a restarted coordinator not yet heard from them, or a SUSPECT host). Such a shadow stays, takes
 * one of the N slots, and is neither placed again nor retired.
 */
export function planShadows(ranked: readonly RankedDestination[], existing: readonly ExistingShadow[], policy: PlacementPolicy, held: ReadonlySet<string> = new Set()): PlacementPlan {
  const manual = new Set(existing.filter((s) => s.manual).map((s) => s.hostId));
  const auto = existing.filter((s) => !s.manual);
  const autoIds = new Set(auto.map((s) => s.hostId));
  const heldIds = auto.filter((s) => held.has(s.hostId)).map((s) => s.hostId);
  const heldSet = new Set(heldIds);
  const wanted = ranked
    .filter((d) => d.score >= policy.shadowingThreshold && !manual.has(d.hostId) && !heldSet.has(d.hostId))
    .sort((a, b) => a.rank - b.rank)
    .slice(0, Math.max(0, policy.maxShadowedVms - heldIds.length));
  const wantedIds = new Set(wanted.map((d) => d.hostId));
  return {
    place: wanted.filter((d) => !autoIds.has(d.hostId)).map((d) => ({ hostId: d.hostId, score: d.score })),
    retire: auto.filter((s) => !wantedIds.has(s.hostId) && !heldSet.has(s.hostId)).map((s) => s.hostId),
    keep: [...manual, ...auto.filter((s) => wantedIds.has(s.hostId) || heldSet.has(s.hostId)).map((s) => s.hostId)],
    held: heldIds,
  };
}

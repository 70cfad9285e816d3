// "Best destination" of a switchover: the ranker's best host among those holding a ready shadow
// of the VM (ready as the switchover itself would check it); a refusal names every host's reason.
// Pure: readiness and ranking come in as functions.
import { FailedPreconditionError, errorMessage } from '../../shared/errors';
import type { RankResult } from '../rank/types';

export interface ChosenDestination {
  hostId: string;
  /** True when the ranker chose it (the caller asked for the best host). */
  chosenByRank: boolean;
  /** Rank score in [0, 1] (0 when not chosen by rank). */
  score: number;
  /** Why: the ranker's strongest reasons, or why a recommended host was set aside. */
  reasons: string[];
  /** Why the named host gave way to this one ("HOST set aside: ..."), when it did. */
  setAside?: string;
}

export interface BestDestinationInput {
  vmId: string;
  sourceHost: string;
  /** Every registered host (the source is skipped). */
  hostIds: readonly string[];
  /** Why `hostId` cannot take the VM over now, or undefined when its shadow is ready. */
  notReadyReason(hostId: string): Promise<string | undefined>;
  /** The ranking of destinations for the VM (with rejected hosts explained). */
  rank(): RankResult;
}

/** Ready hosts and the reasons of the others, checked concurrently; a failing check is a reason. */
export async function readiness(input: Pick<BestDestinationInput, 'sourceHost' | 'hostIds' | 'notReadyReason'>): Promise<{ ready: string[]; notReady: Map<string, string> }> {
  const candidates = [...new Set(input.hostIds)].filter((h) => h !== input.sourceHost).sort();
  const reasons = await Promise.all(candidates.map((h) => input.notReadyReason(h).catch((err) => `readiness unknown: ${errorMessage(err)}`)));
  const notReady = new Map<string, string>();
  const ready: string[] = [];
  candidates.forEach((h, i) => (reasons[i] === undefined ? ready.push(h) : notReady.set(h, reasons[i] as string)));
  return { ready, notReady };
}

/**
 * The best-ranked host holding a ready shadow. FailedPreconditionError, with each host's reason,
 * when no host is ready or the ranker rejects every ready one.
 */
export async function chooseBestDestination(input: BestDestinationInput): Promise<ChosenDestination> {
  const { ready, notReady } = await readiness(input);
  if (ready.length === 0) {
    const why = [...notReady].map(([h, r]) => `${h}: ${r}`).join('; ');
    throw new FailedPreconditionError(`no host holds a ready shadow of vm '${input.vmId}'${why ? ` (${why})` : ' (no other host is registered)'}`);
  }
  const result = input.rank();
  const best = [...result.ranked].sort((a, b) => a.rank - b.rank).find((d) => ready.includes(d.hostId));
  if (!best) {
    const rejected = new Map(result.rejected.map((r) => [r.hostId, `${r.reason}${r.detail ? `: ${r.detail}` : ''}`]));
    const why = ready.map((h) => `${h}: ${rejected.get(h) ?? 'not ranked'}`).join('; ');
    throw new FailedPreconditionError(`no host with a ready shadow of vm '${input.vmId}' passes the ranker (${why})`);
  }
  return { hostId: best.hostId, chosenByRank: true, score: best.score, reasons: best.reasons };
}

// The VM switchover's explicit states (G7): the order of phases, the journal entry written before
// each one runs, and what a restarted coordinator does with an unfinished journal. Pure.
//
// The IP switch starts together with the resume on the destination (journaled once, as
// resume-destination, with ip_may_move): the source guest is paused by then, so no answer is lost
// by moving the address early, and the client's gap no longer waits for the IP switch after the
// resume. 'switch-ip' stays a phase: a restarted coordinator rolls forward from it.
import { FailedPreconditionError } from '../../shared/errors';

/**
 * Forward phases in order; each is journaled before it runs. The run no longer writes a separate
 * 'switch-ip' entry (the switch runs within resume-destination), but recovery still uses it.
 */
export const PHASES = ['pause-source', 'flush-memory', 'migrate-device-state', 'resume-destination', 'switch-ip', 'commit'] as const;
export type ForwardPhase = (typeof PHASES)[number];
/** `rollback`: undoing; the guest must end running on the source only. */
export type SwitchoverPhase = ForwardPhase | 'rollback';

export const JOURNAL_VERSION = 1;

export interface SwitchoverJournal {
  version: number;
  id: string;
  vm_id: string;
  source_host: string;
  destination_host: string;
  fencing_token: number;
  started_at_unix_ms: number;
  /** The phase about to run (or running) when the entry was written. */
  phase: SwitchoverPhase;
  /** Shadow QEMU's incoming address on the destination. */
  incoming_uri: string;
  /** True once the destination may have run the guest (resume was sent). */
  destination_may_run: boolean;
  /**
   * True once the IP switch to the destination may have started: a rollback then moves the
   * address back to the source (with a fresh token) before resuming it. Absent in older journals.
   */
  ip_may_move?: boolean;
  /** Why a rollback started. */
  error: string;
  steps: Array<{ step: string; host_id: string; duration_ms: number; ok: boolean; error: string }>;
}

/** Only forward moves (or into rollback) are allowed; anything else is a bug or a stale journal. */
export function advance(j: SwitchoverJournal, next: SwitchoverPhase): SwitchoverJournal {
  if (j.phase === 'rollback' && next !== 'rollback') throw new FailedPreconditionError(`switchover ${j.id} is rolling back; cannot go to ${next}`);
  if (next !== 'rollback' && j.phase !== 'rollback' && PHASES.indexOf(next) < PHASES.indexOf(j.phase)) {
    throw new FailedPreconditionError(`switchover ${j.id} is in ${j.phase}; cannot go back to ${next}`);
  }
  const movesOn = next === 'resume-destination' || next === 'switch-ip';
  return { ...j, phase: next, destination_may_run: j.destination_may_run || next === 'resume-destination', ip_may_move: (j.ip_may_move ?? false) || movesOn };
}

export type Recovery =
  /** The destination never ran the guest (or is known paused): resume the source. */
  | { kind: 'roll-back'; pauseDestinationFirst: boolean }
  /** The guest runs on the destination: finish (IP, leases, record). */
  | { kind: 'roll-forward'; from: 'switch-ip' | 'commit' }
  /** Cannot tell where the guest runs (destination unreachable): keep the source paused, retry later. */
  | { kind: 'wait'; reason: string };

/**
 * What a restarted coordinator does with a journal. `destinationRunning` is what the destination
 * reports now (undefined = it cannot be reached); it matters only once resume may have been sent.
 */
export function decideRecovery(j: SwitchoverJournal, destinationRunning: boolean | undefined): Recovery {
  if (j.phase === 'rollback') return { kind: 'roll-back', pauseDestinationFirst: j.destination_may_run };
  if (!j.destination_may_run) return { kind: 'roll-back', pauseDestinationFirst: false };
  if (j.phase === 'commit') return { kind: 'roll-forward', from: 'commit' };
  if (destinationRunning === undefined) return { kind: 'wait', reason: `destination ${j.destination_host} unreachable: cannot tell whether the guest runs there` };
  if (destinationRunning) return { kind: 'roll-forward', from: 'switch-ip' };
  // Resume was sent but the guest is not running there: it never ran, or ran and stopped; either
  // way the source is the copy to keep only if the destination stays paused.
  return { kind: 'roll-back', pauseDestinationFirst: true };
}

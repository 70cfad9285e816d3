// Errors of guest memory access and dirty tracking.
import { UmbraError } from '../../shared/errors';
import type { TrackerName } from './dirty-tracker';

/** A tracker's mechanism is missing here (kernel option, feature, no userfaultfd in the process). */
export class TrackerUnavailableError extends UmbraError {
  readonly tracker: TrackerName;
  constructor(tracker: TrackerName, why: string, options?: { cause?: unknown }) {
    super('FAILED_PRECONDITION', `dirty tracker ${tracker} unavailable: ${why}`, options);
    this.name = 'TrackerUnavailableError';
    this.tracker = tracker;
  }
}

/** Operation on a tracker that was not started or was closed. */
export class TrackerStateError extends UmbraError {
  constructor(tracker: TrackerName, state: string) {
    super('FAILED_PRECONDITION', `dirty tracker ${tracker} is ${state}`);
    this.name = 'TrackerStateError';
  }
}

// Picks the best dirty tracker that starts for a guest, and records why the others did not.
import { errorMessage } from '../../shared/errors';
import { TRACKER_PREFERENCE, type DirtyTracker, type TrackerName } from './dirty-tracker';
import type { GuestMemory } from './guest-memory';
import { HashTracker } from './hash-tracker';
import { SoftDirtyTracker } from './soft-dirty-tracker';
import { UffdWpTracker, type UffdWpTrackerOptions } from './uffd-wp-tracker';

export interface TrackerAttempt {
  name: TrackerName;
  ok: boolean;
  /** Why it was chosen or skipped, for health output. */
  reason: string;
}

export interface TrackerSelection {
  tracker: DirtyTracker;
  attempts: TrackerAttempt[];
}

export interface SelectTrackerOptions {
  /** Trackers to try, best first (default: uffd-wp, soft-dirty, hash). */
  order?: readonly TrackerName[];
  uffd?: UffdWpTrackerOptions;
}

export function createTracker(name: TrackerName, memory: GuestMemory, options: SelectTrackerOptions = {}): DirtyTracker {
  switch (name) {
    case 'uffd-wp':
      return new UffdWpTracker(memory.region, options.uffd);
    case 'soft-dirty':
      return new SoftDirtyTracker(memory.region);
    case 'hash':
      return new HashTracker(memory);
  }
}

/** Starts the first tracker that works; throws the last failure if none does. */
export async function selectDirtyTracker(memory: GuestMemory, options: SelectTrackerOptions = {}): Promise<TrackerSelection> {
  const attempts: TrackerAttempt[] = [];
  let lastError: unknown;
  for (const name of options.order ?? TRACKER_PREFERENCE) {
    const tracker = createTracker(name, memory, options);
    try {
      await tracker.start();
      attempts.push({ name, ok: true, reason: 'started' });
      return { tracker, attempts };
    } catch (err) {
      tracker.close();
      lastError = err;
      attempts.push({ name, ok: false, reason: errorMessage(err) });
    }
  }
  throw lastError ?? new Error('no dirty tracker to try');
}

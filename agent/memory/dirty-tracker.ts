// The dirty-page tracker port: which pages of a guest's RAM were written since the last round.

export type TrackerName = 'uffd-wp' | 'soft-dirty' | 'hash';

/** Best first: the order the selector tries them in. */
export const TRACKER_PREFERENCE: readonly TrackerName[] = ['uffd-wp', 'soft-dirty', 'hash'];

export interface DirtyTracker {
  readonly name: TrackerName;
  /** Arms tracking. Fails (typed error with the reason) when the mechanism is not available. */
  start(): Promise<void>;
  /**
   * Sorted indexes of pages written since the previous scan. The first scan after start() returns
   * every page (the full copy), because nothing was tracked before it. A page written while a scan
   * runs is reported by this scan or the next, never lost; reading the pages after scan() returns
   * is what makes the copy current.
   */
  scan(): Promise<Uint32Array>;
  close(): void;
}

export function allPages(pageCount: number): Uint32Array {
  const out = new Uint32Array(pageCount);
  for (let i = 0; i < pageCount; i++) out[i] = i;
  return out;
}

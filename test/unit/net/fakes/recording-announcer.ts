// Announcer fake: records every burst and lets the test finish or fail it.
import type { Announcement, AnnouncementBurst, Announcer } from '../../../../agent/net/ports';

export interface RecordedBurst {
  announcement: Announcement;
  cancelled: boolean;
  finish(frames: number): void;
}

export class RecordingAnnouncer implements Announcer {
  readonly bursts: RecordedBurst[] = [];
  readonly prepared: string[] = [];
  /** When set, the next announce() fails its first frame with this error. */
  failNext?: Error;
  closed = false;

  prepare(interfaceName: string): void {
    this.prepared.push(interfaceName);
  }

  announce(announcement: Announcement): AnnouncementBurst {
    let finish!: (n: number) => void;
    const finished = new Promise<number>((r) => (finish = r));
    const rec: RecordedBurst = { announcement, cancelled: false, finish };
    this.bursts.push(rec);
    const err = this.failNext;
    this.failNext = undefined;
    if (err) finish(0);
    return {
      firstSent: err ? Promise.reject(err) : Promise.resolve(),
      finished,
      cancel: () => {
        rec.cancelled = true;
        finish(1);
      },
    };
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

// Keeps a shadow image file in step with a running QEMU's guest RAM using the memory shadowing
// dirty tracker (uffd-wp when available): each round copies only the pages written since the last
// one, straight into the file (same host, so no frames or stream; bench/shadow-sync measures those).
import { closeSync, openSync, writeSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { DirtyTracker, TrackerName } from '../../agent/memory/dirty-tracker';
import { locateGuestRam, ProcGuestMemory } from '../../agent/memory/proc-guest-memory';
import { createTracker } from '../../agent/memory/tracker-selector';

/** Pages copied per read/write pair. */
const RUN_MAX_PAGES = 256;

export interface RoundFigures {
  pages: number;
  bytes: number;
  scanMs: number;
  copyMs: number;
}

export class TrackedShadowImage {
  private readonly buf: Buffer;

  private constructor(
    private readonly memory: ProcGuestMemory,
    private readonly tracker: DirtyTracker,
    private readonly fd: number,
  ) {
    this.buf = Buffer.alloc(RUN_MAX_PAGES * memory.region.pageSizeBytes);
  }

  /** Arms tracking on `pid`'s memfd RAM; the image file must exist (its size is kept). */
  static async open(pid: number, sizeBytes: number, imagePath: string, trackerName: TrackerName = 'uffd-wp'): Promise<TrackedShadowImage> {
    const memory = ProcGuestMemory.open(locateGuestRam(pid, { sizeBytes, pathContains: 'memfd:' }));
    const tracker = createTracker(trackerName, memory);
    try {
      await tracker.start();
    } catch (err) {
      tracker.close();
      memory.close();
      throw err;
    }
    return new TrackedShadowImage(memory, tracker, openSync(imagePath, 'r+'));
  }

  get trackerName(): TrackerName {
    return this.tracker.name;
  }

  /** One round: the pages written since the previous round (all of them the first time) into the image. */
  async round(): Promise<RoundFigures> {
    const t0 = performance.now();
    const pages = await this.tracker.scan();
    const t1 = performance.now();
    const ps = this.memory.region.pageSizeBytes;
    let i = 0;
    while (i < pages.length) {
      let run = 1;
      while (i + run < pages.length && run < RUN_MAX_PAGES && pages[i + run] === pages[i] + run) run++;
      this.memory.readPages(pages[i], run, this.buf);
      writeSync(this.fd, this.buf, 0, run * ps, pages[i] * ps);
      i += run;
    }
    return { pages: pages.length, bytes: pages.length * ps, scanMs: t1 - t0, copyMs: performance.now() - t1 };
  }

  close(): void {
    this.tracker.close();
    this.memory.close();
    closeSync(this.fd);
  }
}

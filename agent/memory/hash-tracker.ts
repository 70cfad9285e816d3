// Dirty tracking by content: a 64-bit hash per page (native/page-hash.h), compared with the
// previous round. Works on any kernel; reads all of guest RAM every round (in place, through a
// read-only shared mapping of the backing object), yielding to the event loop between chunks.
import { TrackerStateError, TrackerUnavailableError } from './errors';
import type { DirtyTracker } from './dirty-tracker';
import type { GuestMemory } from './guest-memory';
import { native, type MappingHandle } from './native-binding';
import { errorMessage } from '../../shared/errors';

/** Pages hashed between two yields to the event loop (64 MiB of 4 KiB pages: a few ms). */
const PAGES_PER_SLICE = 16384;

export class HashTracker implements DirtyTracker {
  readonly name = 'hash' as const;
  private mapping: MappingHandle | undefined;
  private state: 'new' | 'started' | 'closed' = 'new';
  private previous: BigUint64Array;
  private current: BigUint64Array;
  private first = true;
  private readonly out: Uint32Array;

  constructor(private readonly memory: GuestMemory) {
    this.previous = new BigUint64Array(memory.pageCount);
    this.current = new BigUint64Array(memory.pageCount);
    this.out = new Uint32Array(memory.pageCount);
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new TrackerStateError(this.name, this.state);
    const { sizeBytes, fileOffsetBytes } = this.memory.region;
    try {
      this.mapping = native.mapShared(this.memory.fd, sizeBytes, fileOffsetBytes);
    } catch (err) {
      throw new TrackerUnavailableError(this.name, `cannot map guest RAM: ${errorMessage(err)}`, { cause: err });
    }
    this.state = 'started';
  }

  async scan(): Promise<Uint32Array> {
    if (this.state !== 'started' || !this.mapping) throw new TrackerStateError(this.name, this.state);
    const pages = this.memory.pageCount;
    const pageSize = this.memory.region.pageSizeBytes;
    for (let first = 0; first < pages; first += PAGES_PER_SLICE) {
      const count = Math.min(PAGES_PER_SLICE, pages - first);
      native.hashMappedPages(this.mapping, first, count, pageSize, this.current, first);
      if (first + count < pages) await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.state !== 'started') throw new TrackerStateError(this.name, this.state);
    }
    let n = 0;
    if (this.first) {
      this.first = false;
      for (let i = 0; i < pages; i++) this.out[n++] = i;
    } else {
      // Compare as 32-bit halves: plain number compares, no BigInt allocation per page.
      const a = new Uint32Array(this.current.buffer, this.current.byteOffset, pages * 2);
      const b = new Uint32Array(this.previous.buffer, this.previous.byteOffset, pages * 2);
      for (let i = 0; i < pages; i++) {
        if (a[2 * i] !== b[2 * i] || a[2 * i + 1] !== b[2 * i + 1]) this.out[n++] = i;
      }
    }
    const swap = this.previous;
    this.previous = this.current;
    this.current = swap;
    return this.out.slice(0, n);
  }

  close(): void {
    if (this.mapping) native.unmapShared(this.mapping);
    this.mapping = undefined;
    this.state = 'closed';
  }
}

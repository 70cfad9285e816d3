// Dirty tracking with userfaultfd asynchronous write-protect + PAGEMAP_SCAN (Linux 6.7+): the
// userfaultfd lives in the VM process (made by the preload library); we take a copy with
// pidfd_getfd, register guest RAM in WP mode, and each scan returns the written pages while
// re-protecting them in the same kernel walk. Cost is proportional to the pages written.
import { closeSync, openSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { errorMessage } from '../../shared/errors';
import { allPages, type DirtyTracker } from './dirty-tracker';
import { TrackerStateError, TrackerUnavailableError } from './errors';
import type { GuestRamRegion } from './guest-memory';
import { native, NativeCallError } from './native-binding';

const UFFD_LINK = 'anon_inode:[userfaultfd]';
const UFFD_FEATURE_WP_ASYNC = 1 << 15;

/** Finds a userfaultfd in process `pid` with WP_ASYNC enabled; returns its fd number there. */
export function findProcessUffd(pid: number): number | undefined {
  let names: string[];
  try {
    names = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return undefined;
  }
  for (const name of names) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${name}`) !== UFFD_LINK) continue;
      // fdinfo prints "API:\t<api>:<features>:<ioctls>" for a userfaultfd after its handshake.
      const m = /API:\s*([0-9a-f]+):([0-9a-f]+):/i.exec(readFileSync(`/proc/${pid}/fdinfo/${name}`, 'utf8'));
      if (m && (parseInt(m[2], 16) & UFFD_FEATURE_WP_ASYNC) !== 0) return Number(name);
    } catch {
      // fd closed while we looked: try the next one
    }
  }
  return undefined;
}

export interface UffdWpTrackerOptions {
  /** The userfaultfd's fd number inside the VM process; found through /proc/PID/fd when omitted. */
  targetUffd?: number;
}

export class UffdWpTracker implements DirtyTracker {
  readonly name = 'uffd-wp' as const;
  private uffd = -1;
  private pagemapFd = -1;
  private state: 'new' | 'started' | 'closed' = 'new';
  private first = true;
  private readonly out: Uint32Array;
  private readonly pageCount: number;

  constructor(private readonly region: GuestRamRegion, private readonly options: UffdWpTrackerOptions = {}) {
    this.pageCount = Math.floor(region.sizeBytes / region.pageSizeBytes);
    this.out = new Uint32Array(this.pageCount);
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new TrackerStateError(this.name, this.state);
    const { pid, startAddress, sizeBytes } = this.region;
    const target = this.options.targetUffd ?? findProcessUffd(pid);
    if (target === undefined) {
      throw new TrackerUnavailableError(
        this.name,
        `process ${pid} holds no userfaultfd with WP_ASYNC (start it with LD_PRELOAD=umbra-uffd-preload.so)`,
      );
    }
    let pidfd = -1;
    try {
      pidfd = native.pidfdOpen(pid);
      this.uffd = native.pidfdGetfd(pidfd, target);
      native.uffdRegisterWp(this.uffd, startAddress, sizeBytes);
      this.pagemapFd = openSync(`/proc/${pid}/pagemap`, 'r');
    } catch (err) {
      this.release();
      const why = err instanceof NativeCallError ? `${err.call} ${err.errno}` : errorMessage(err);
      throw new TrackerUnavailableError(this.name, why, { cause: err });
    } finally {
      if (pidfd >= 0) closeSync(pidfd);
    }
    this.state = 'started';
  }

  async scan(): Promise<Uint32Array> {
    if (this.state !== 'started') throw new TrackerStateError(this.name, this.state);
    const { startAddress, sizeBytes, pageSizeBytes } = this.region;
    // The walk write-protects what it reports, so it runs on the first round too (arming every page).
    const n = native.pagemapScanWritten(this.pagemapFd, startAddress, sizeBytes, pageSizeBytes, this.out);
    if (this.first) {
      this.first = false;
      return allPages(this.pageCount);
    }
    return this.out.slice(0, n);
  }

  close(): void {
    if (this.state === 'started') {
      try {
        native.uffdUnregister(this.uffd, this.region.startAddress, this.region.sizeBytes);
      } catch {
        // the VM process may already be gone; nothing left to unregister
      }
    }
    this.release();
    this.state = 'closed';
  }

  private release(): void {
    if (this.uffd >= 0) closeSync(this.uffd);
    if (this.pagemapFd >= 0) closeSync(this.pagemapFd);
    this.uffd = -1;
    this.pagemapFd = -1;
  }
}

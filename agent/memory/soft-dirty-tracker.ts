// Dirty tracking with the kernel's soft-dirty bits (CONFIG_MEM_SOFT_DIRTY): clear_refs 4 resets
// them, pagemap bit 55 reports pages written since. Each scan reads the bits, then clears them; a
// page written between those two steps is only caught if it is written again, so the final round
// must run with the guest paused (as switchover does), where the window is empty.
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { errorMessage } from '../../shared/errors';
import { allPages, type DirtyTracker } from './dirty-tracker';
import { TrackerStateError, TrackerUnavailableError } from './errors';
import type { GuestRamRegion } from './guest-memory';
import { native } from './native-binding';

const CLEAR_REFS_SOFT_DIRTY = '4';

/**
 * Whether the kernel tracks soft-dirty bits: with CONFIG_MEM_SOFT_DIRTY every VMA lists the "sd"
 * flag in smaps' VmFlags; without it the flag never appears (and clear_refs 4 silently does nothing).
 */
export function softDirtySupported(pid: number | 'self' = 'self'): { ok: boolean; why: string } {
  try {
    const smaps = readFileSync(`/proc/${pid}/smaps`, 'utf8');
    if (/^VmFlags:.*\bsd\b/m.test(smaps)) return { ok: true, why: 'VmFlags show sd' };
    return { ok: false, why: 'kernel built without CONFIG_MEM_SOFT_DIRTY (no "sd" in /proc/PID/smaps VmFlags)' };
  } catch (err) {
    return { ok: false, why: `cannot read /proc/${pid}/smaps: ${errorMessage(err)}` };
  }
}

export class SoftDirtyTracker implements DirtyTracker {
  readonly name = 'soft-dirty' as const;
  private pagemapFd = -1;
  private state: 'new' | 'started' | 'closed' = 'new';
  private first = true;
  private readonly out: Uint32Array;
  private readonly pageCount: number;

  constructor(private readonly region: GuestRamRegion) {
    this.pageCount = Math.floor(region.sizeBytes / region.pageSizeBytes);
    this.out = new Uint32Array(this.pageCount);
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new TrackerStateError(this.name, this.state);
    const support = softDirtySupported(this.region.pid);
    if (!support.ok) throw new TrackerUnavailableError(this.name, support.why);
    try {
      this.pagemapFd = openSync(`/proc/${this.region.pid}/pagemap`, 'r');
      this.clear();
    } catch (err) {
      if (this.pagemapFd >= 0) closeSync(this.pagemapFd);
      throw new TrackerUnavailableError(this.name, errorMessage(err), { cause: err });
    }
    this.state = 'started';
  }

  async scan(): Promise<Uint32Array> {
    if (this.state !== 'started') throw new TrackerStateError(this.name, this.state);
    const { startAddress, pageSizeBytes } = this.region;
    const n = native.pagemapSoftDirty(this.pagemapFd, startAddress, this.pageCount, pageSizeBytes, this.out);
    this.clear();
    if (this.first) {
      this.first = false;
      return allPages(this.pageCount);
    }
    return this.out.slice(0, n);
  }

  close(): void {
    if (this.pagemapFd >= 0) closeSync(this.pagemapFd);
    this.pagemapFd = -1;
    this.state = 'closed';
  }

  private clear(): void {
    writeFileSync(`/proc/${this.region.pid}/clear_refs`, CLEAR_REFS_SOFT_DIRTY);
  }
}

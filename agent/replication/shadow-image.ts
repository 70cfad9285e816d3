// The shadow image file (<shadow_image_dir>/<vm>.ram; by default under <data>/shadow/): a sparse
// file the size of guest RAM, written page by page from verified frames. Zero pages become holes,
// so an idle guest costs little disk.
import { mkdirSync, promises as fsp, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { isZeroPage } from '../../shared/frame-builder';
import type { Frame } from '../../shared/frame-codec';
import { native } from '../memory/native-binding';
import { ShadowDiskFullError, ShadowImageError } from './errors';
import type { GuestMemory } from '../memory/guest-memory';
import { computeDigest, fdHasher, type ImageDigest } from './image-digest';

const DISK_FULL_CODES = new Set(['ENOSPC', 'EDQUOT']);
const SEED_SLICE_BYTES = 32 * 1024 * 1024;

export function shadowImagePath(imageDir: string, vmId: string): string {
  return path.join(imageDir, `${encodeURIComponent(vmId)}.ram`);
}

/** Size of an existing image, or undefined when there is none. */
export function existingImageSize(file: string): number | undefined {
  try {
    return statSync(file).size;
  } catch {
    return undefined;
  }
}

/** Runs of consecutive page indexes: [firstPage, count][]. */
function runs(pages: Uint32Array): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let k = 0; k < pages.length; k++) {
    const last = out[out.length - 1];
    if (last && last[0] + last[1] === pages[k]) last[1]++;
    else out.push([pages[k], 1]);
  }
  return out;
}

export class ShadowImage {
  private constructor(
    readonly vmId: string,
    readonly path: string,
    readonly sizeBytes: number,
    private readonly handle: fsp.FileHandle,
  ) {}

  /** Opens or creates the image with exactly `sizeBytes` (a new file is all holes). */
  static async open(imageDir: string, vmId: string, sizeBytes: number): Promise<ShadowImage> {
    const file = shadowImagePath(imageDir, vmId);
    try {
      mkdirSync(path.dirname(file), { recursive: true });
      const handle = await fsp.open(file, existingImageSize(file) === undefined ? 'w+' : 'r+');
      await handle.truncate(sizeBytes);
      return new ShadowImage(vmId, file, sizeBytes, handle);
    } catch (err) {
      throw mapIoError(vmId, file, 'open', err);
    }
  }

  /**
   * Writes a verified frame's pages: data pages in coalesced runs, zero pages as punched holes.
   * pwrite is called synchronously: it only copies into the page cache (durability comes from
   * sync() per epoch), and a hop through the thread pool per run cost more than the copy on a
   * loaded host; frames of a stream are applied one after the other anyway.
   */
  async apply(frame: Frame): Promise<void> {
    const ps = frame.pageSizeBytes;
    try {
      let k = 0;
      for (const [first, count] of runs(frame.dataPages)) {
        const chunk = frame.data.subarray(k * ps, (k + count) * ps);
        let done = 0;
        while (done < chunk.length) {
          done += writeSync(this.handle.fd, chunk, done, chunk.length - done, first * ps + done);
        }
        k += count;
      }
      for (const [first, count] of runs(frame.zeroPages)) native.punchHole(this.handle.fd, first * ps, count * ps);
    } catch (err) {
      throw mapIoError(this.vmId, this.path, 'write', err);
    }
  }

  /**
   * Copies guest RAM into the image (a new one, all holes), leaving zero pages as holes; returns
   * the data pages written. In 32 MiB slices with a yield between them.
   */
  async seedFrom(memory: GuestMemory): Promise<number> {
    const ps = memory.region.pageSizeBytes;
    const perSlice = Math.max(1, Math.floor(SEED_SLICE_BYTES / ps));
    const buf = Buffer.alloc(perSlice * ps);
    let written = 0;
    try {
      for (let first = 0; first < memory.pageCount; first += perSlice) {
        const count = Math.min(perSlice, memory.pageCount - first);
        memory.readPages(first, count, buf);
        // Runs of data pages go in one write each.
        for (let k = 0; k < count; ) {
          if (isZeroPage(buf, k * ps, ps)) {
            k++;
            continue;
          }
          let end = k + 1;
          while (end < count && !isZeroPage(buf, end * ps, ps)) end++;
          const run = buf.subarray(k * ps, end * ps);
          let done = 0;
          while (done < run.length) done += writeSync(this.handle.fd, run, done, run.length - done, (first + k) * ps + done);
          written += end - k;
          k = end;
        }
        await new Promise((r) => setImmediate(r));
      }
    } catch (err) {
      throw mapIoError(this.vmId, this.path, 'seed', err);
    }
    return written;
  }

  /** The image's block digest (see image-digest.ts), read from the page cache or the disk. */
  async digest(blockBytes: number): Promise<ImageDigest> {
    try {
      return await computeDigest(this.sizeBytes, blockBytes, fdHasher(this.handle.fd));
    } catch (err) {
      throw mapIoError(this.vmId, this.path, 'digest', err);
    }
  }

  /** Makes the written pages durable (before the epoch that covers them is persisted). */
  async sync(): Promise<void> {
    try {
      await this.handle.datasync();
    } catch (err) {
      throw mapIoError(this.vmId, this.path, 'sync', err);
    }
  }

  async close(): Promise<void> {
    await this.handle.close().catch(() => undefined);
  }
}

function mapIoError(vmId: string, file: string, op: string, err: unknown): Error {
  const code = (err as { code?: string; errno?: string }).code ?? (err as { errno?: string }).errno;
  if (code && DISK_FULL_CODES.has(code)) return new ShadowDiskFullError(vmId, file, { cause: err });
  return new ShadowImageError(vmId, file, `${op} failed: ${(err as Error).message}`, { cause: err });
}

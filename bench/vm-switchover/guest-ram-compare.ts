// Guest-RAM checks for the benchmark: page-by-page comparison of two RAM images, and a stand-in
// for the final memory delta (copy only the pages that differ) until the dirty tracker is wired in.
import { promises as fs } from 'node:fs';

const PAGE_BYTES = 4096;
const CHUNK_BYTES = 4 * 1024 * 1024;

export interface RamComparison {
  pages: number;
  differingPages: number;
  /** Pages of `a` that are not all zero (how much of the guest's RAM holds data). */
  nonZeroPages: number;
}

const ZERO_PAGE = Buffer.alloc(PAGE_BYTES);

/** Compares two RAM images of `sizeBytes` (paths such as /proc/PID/fd/N or a shadow file). */
export async function compareRam(aPath: string, bPath: string, sizeBytes: number): Promise<RamComparison> {
  const a = await fs.open(aPath, 'r');
  const b = await fs.open(bPath, 'r');
  const ba = Buffer.alloc(CHUNK_BYTES);
  const bb = Buffer.alloc(CHUNK_BYTES);
  let differingPages = 0;
  let nonZeroPages = 0;
  try {
    for (let off = 0; off < sizeBytes; off += CHUNK_BYTES) {
      const len = Math.min(CHUNK_BYTES, sizeBytes - off);
      await a.read(ba, 0, len, off);
      bb.fill(0);
      await b.read(bb, 0, len, off);
      const same = ba.subarray(0, len).equals(bb.subarray(0, len));
      for (let p = 0; p < len; p += PAGE_BYTES) {
        const pa = ba.subarray(p, p + PAGE_BYTES);
        if (!pa.equals(ZERO_PAGE)) nonZeroPages++;
        if (!same && !pa.equals(bb.subarray(p, p + PAGE_BYTES))) differingPages++;
      }
    }
  } finally {
    await a.close();
    await b.close();
  }
  return { pages: sizeBytes / PAGE_BYTES, differingPages, nonZeroPages };
}

/** Makes `dstPath` equal to `srcPath` by writing only the differing pages; returns bytes written. */
export async function syncDifferingPages(srcPath: string, dstPath: string, sizeBytes: number): Promise<number> {
  const a = await fs.open(srcPath, 'r');
  const b = await fs.open(dstPath, 'r+');
  const ba = Buffer.alloc(CHUNK_BYTES);
  const bb = Buffer.alloc(CHUNK_BYTES);
  let written = 0;
  try {
    for (let off = 0; off < sizeBytes; off += CHUNK_BYTES) {
      const len = Math.min(CHUNK_BYTES, sizeBytes - off);
      await a.read(ba, 0, len, off);
      bb.fill(0);
      await b.read(bb, 0, len, off);
      if (ba.subarray(0, len).equals(bb.subarray(0, len))) continue;
      // Runs of consecutive differing pages go out as one write.
      let runStart = -1;
      for (let p = 0; p <= len; p += PAGE_BYTES) {
        const differs = p < len && !ba.subarray(p, p + PAGE_BYTES).equals(bb.subarray(p, p + PAGE_BYTES));
        if (differs && runStart < 0) runStart = p;
        if (!differs && runStart >= 0) {
          await b.write(ba, runStart, p - runStart, off + runStart);
          written += p - runStart;
          runStart = -1;
        }
      }
    }
  } finally {
    await a.close();
    await b.close();
  }
  return written;
}

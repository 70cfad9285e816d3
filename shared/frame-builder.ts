// Splits one round's pages into frames (pure): zero pages elided, at most FRAME_MAX_PAGES per frame.
import { FRAME_MAX_PAGES, type Frame } from './frame-codec';

export interface RoundPages {
  vmId: string;
  generation: string;
  epoch: number;
  pageSizeBytes: number;
  imagePageCount: number;
  /** Sorted page indexes of the round and their contents (pages.length * pageSizeBytes bytes). */
  pages: Uint32Array;
  contents: Buffer;
}

let zeroPage = Buffer.alloc(0);

/** Whether `size` bytes of `buf` at `offset` are all zero (one memcmp against a zero page). */
export function isZeroPage(buf: Buffer, offset: number, size: number): boolean {
  if (zeroPage.length !== size) zeroPage = Buffer.alloc(size);
  return buf.compare(zeroPage, 0, size, offset, offset + size) === 0; // memcmp
}

export type FrameMeta = Omit<RoundPages, 'pages' | 'contents'>;

/** One frame of `pages` (sorted) whose contents are `contents` (pages.length * pageSizeBytes bytes). */
export function buildFrame(meta: FrameMeta, pages: Uint32Array, contents: Buffer, index: number, last: boolean): Frame {
  const ps = meta.pageSizeBytes;
  const zero: number[] = [];
  const data: number[] = [];
  const chunks: Buffer[] = [];
  for (let k = 0; k < pages.length; k++) {
    const off = k * ps;
    if (isZeroPage(contents, off, ps)) zero.push(pages[k]);
    else {
      data.push(pages[k]);
      chunks.push(contents.subarray(off, off + ps));
    }
  }
  return {
    vmId: meta.vmId,
    generation: meta.generation,
    epoch: meta.epoch,
    index,
    last,
    pageSizeBytes: ps,
    imagePageCount: meta.imagePageCount,
    zeroPages: Uint32Array.from(zero),
    dataPages: Uint32Array.from(data),
    data: chunks.length === 1 ? Buffer.from(chunks[0]) : Buffer.concat(chunks),
  };
}

/** Frames of one epoch; an epoch with no pages still yields one (empty, last) frame so it is acknowledged. */
export function buildRoundFrames(round: RoundPages, maxPagesPerFrame = FRAME_MAX_PAGES): Frame[] {
  const frames: Frame[] = [];
  const ps = round.pageSizeBytes;
  const n = round.pages.length;
  const count = Math.max(1, Math.ceil(n / maxPagesPerFrame));
  for (let f = 0; f < count; f++) {
    const start = f * maxPagesPerFrame;
    const end = Math.min(n, start + maxPagesPerFrame);
    frames.push(buildFrame(round, round.pages.subarray(start, end), round.contents.subarray(start * ps, end * ps), f, f === count - 1));
  }
  return frames;
}

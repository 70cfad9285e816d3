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

function isZeroPage(buf: Buffer, offset: number, size: number): boolean {
  if (zeroPage.length !== size) zeroPage = Buffer.alloc(size);
  return buf.compare(zeroPage, 0, size, offset, offset + size) === 0; // memcmp
}

/** Frames of one epoch; an epoch with no pages still yields one (empty, last) frame so it is acknowledged. */
export function buildRoundFrames(round: RoundPages, maxPagesPerFrame = FRAME_MAX_PAGES): Frame[] {
  const frames: Frame[] = [];
  const ps = round.pageSizeBytes;
  const n = round.pages.length;
  for (let start = 0; start < n || frames.length === 0; start += maxPagesPerFrame) {
    const end = Math.min(n, start + maxPagesPerFrame);
    const zero: number[] = [];
    const data: number[] = [];
    const chunks: Buffer[] = [];
    for (let k = start; k < end; k++) {
      const off = k * ps;
      if (isZeroPage(round.contents, off, ps)) zero.push(round.pages[k]);
      else {
        data.push(round.pages[k]);
        chunks.push(round.contents.subarray(off, off + ps));
      }
    }
    frames.push({
      vmId: round.vmId,
      generation: round.generation,
      epoch: round.epoch,
      index: frames.length,
      last: false,
      pageSizeBytes: ps,
      imagePageCount: round.imagePageCount,
      zeroPages: Uint32Array.from(zero),
      dataPages: Uint32Array.from(data),
      data: Buffer.concat(chunks),
    });
    if (n === 0) break;
  }
  frames[frames.length - 1].last = true;
  return frames;
}

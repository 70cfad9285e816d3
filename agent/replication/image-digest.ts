// A digest of a memory image: one xxh64 per fixed-size block. A shadow that already holds an image
// (the copy of an earlier replication, e.g. of the VM before a switchover moved it) sends its
// digest when a new source session starts; the source compares it with its own RAM and owes only
// the blocks that differ, instead of a full copy. Pure, but for fdHasher: the one way both sides read.
import { native } from '../memory/native-binding';

/** Blocks of at least 64 KiB: 16 B of digest per MiB of guest RAM. */
export const DIGEST_MIN_BLOCK_BYTES = 64 * 1024;
/** The addon hashes at most this much in one piece (HASH_CHUNK_BYTES in umbra_memory.c). */
export const DIGEST_MAX_BLOCK_BYTES = 256 * 1024;
/** At most 8 MiB of digest in the ready message (the replication stream takes 16 MiB messages). */
export const DIGEST_MAX_BLOCKS = 1 << 20;
/** Hashed per call before yielding, so a large image does not hold the event loop. */
const SLICE_BYTES = 32 * 1024 * 1024;

export interface ImageDigest {
  blockBytes: number;
  /** xxh64 (seed 0) of each block in order; the last block may be shorter. */
  hashes: BigUint64Array;
}

/** Hashes `count` blocks of `blockBytes` from `offsetBytes` into `out[outOffset..]`; returns blocks hashed. */
export type BlockHasher = (offsetBytes: number, count: number, blockBytes: number, out: BigUint64Array, outOffset: number) => number;

/** Reads blocks of a file (an image, or guest RAM's backing object from `baseOffset`) with the addon's pread and xxh64. */
export function fdHasher(fd: number, baseOffset = 0): BlockHasher {
  return (offset, count, blockBytes, out, outOffset) => native.hashFdPages(fd, baseOffset + offset, count, blockBytes, out, outOffset);
}

/** The block size for an image of `imageBytes`, or undefined when its digest would be too large. */
export function digestBlockBytes(imageBytes: number): number | undefined {
  let block = DIGEST_MIN_BLOCK_BYTES;
  while (Math.ceil(imageBytes / block) > DIGEST_MAX_BLOCKS) block *= 2;
  return block <= DIGEST_MAX_BLOCK_BYTES ? block : undefined;
}

export function digestBlockCount(imageBytes: number, blockBytes: number): number {
  return Math.ceil(imageBytes / blockBytes);
}

/** The digest of `imageBytes` read through `hash`, a slice at a time with a yield between slices. */
export async function computeDigest(imageBytes: number, blockBytes: number, hash: BlockHasher): Promise<ImageDigest> {
  const total = digestBlockCount(imageBytes, blockBytes);
  const full = Math.floor(imageBytes / blockBytes);
  const hashes = new BigUint64Array(total);
  const perSlice = Math.max(1, Math.floor(SLICE_BYTES / blockBytes));
  for (let first = 0; first < full; first += perSlice) {
    const count = Math.min(perSlice, full - first);
    const got = hash(first * blockBytes, count, blockBytes, hashes, first);
    if (got !== count) throw new Error(`image ended at block ${first + got} of ${total}`);
    await new Promise((r) => setImmediate(r));
  }
  if (full < total) {
    const tail = imageBytes - full * blockBytes;
    if (hash(full * blockBytes, 1, tail, hashes, full) !== 1) throw new Error(`image ended at block ${full} of ${total}`);
  }
  return { blockBytes, hashes };
}

/**
 * Pages of a `pageCount`-page image whose block hashes differ between `ours` and `theirs` (every
 * page when the digests do not describe the same layout), sorted.
 */
export function differingPages(ours: ImageDigest, theirs: ImageDigest, pageSizeBytes: number, pageCount: number): Uint32Array {
  if (ours.blockBytes !== theirs.blockBytes || ours.hashes.length !== theirs.hashes.length) return allPages(pageCount);
  const out: number[] = [];
  let next = 0; // pages below this are already listed (a page may span blocks)
  for (let b = 0; b < ours.hashes.length; b++) {
    if (ours.hashes[b] === theirs.hashes[b]) continue;
    const first = Math.max(next, Math.floor((b * ours.blockBytes) / pageSizeBytes));
    const end = Math.min(pageCount, Math.ceil(((b + 1) * ours.blockBytes) / pageSizeBytes));
    for (let p = first; p < end; p++) out.push(p);
    next = Math.max(next, end);
  }
  return Uint32Array.from(out);
}

function allPages(pageCount: number): Uint32Array {
  const out = new Uint32Array(pageCount);
  for (let i = 0; i < pageCount; i++) out[i] = i;
  return out;
}

/** The digest's hashes as little-endian u64 bytes (the wire form). */
export function digestHashesToBytes(hashes: BigUint64Array): Buffer {
  const out = Buffer.alloc(hashes.length * 8);
  for (let i = 0; i < hashes.length; i++) out.writeBigUInt64LE(hashes[i], i * 8);
  return out;
}

/** Reads the wire form back; undefined when it cannot be a digest of this image. */
export function digestFromWire(blockBytes: number, bytes: Uint8Array, imageBytes: number): ImageDigest | undefined {
  if (!(blockBytes >= DIGEST_MIN_BLOCK_BYTES && blockBytes <= DIGEST_MAX_BLOCK_BYTES) || bytes.length !== digestBlockCount(imageBytes, blockBytes) * 8) return undefined;
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const hashes = new BigUint64Array(bytes.length / 8);
  for (let i = 0; i < hashes.length; i++) hashes[i] = buf.readBigUInt64LE(i * 8);
  return { blockBytes, hashes };
}

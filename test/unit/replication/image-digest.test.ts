// Image digests: block sizes by image size, hashing in slices with a short last block, the pages
// of differing blocks (small and huge pages), and the wire form.
import test from 'ava';
import { native } from '../../../agent/memory/native-binding';
import { computeDigest, differingPages, digestBlockBytes, digestFromWire, digestHashesToBytes, DIGEST_MAX_BLOCKS } from '../../../agent/replication/image-digest';

const KIB = 1024;
const GIB = 1024 ** 3;

/** A hasher over an in-memory image, as hashFdPages reads a file. */
function hasherOf(image: Buffer) {
  return (offset: number, count: number, block: number, out: BigUint64Array, at: number) => {
    let n = 0;
    for (; n < count && offset + n * block < image.length; n++) out[at + n] = native.xxh64(image.subarray(offset + n * block, offset + (n + 1) * block));
    return n;
  };
}

test('block size: 64 KiB up to 64 GiB, doubling above, none beyond what fits the message', (t) => {
  t.is(digestBlockBytes(1 * GIB), 64 * KIB);
  t.is(digestBlockBytes(64 * GIB), 64 * KIB);
  t.is(digestBlockBytes(64 * GIB + 4096), 128 * KIB);
  t.is(digestBlockBytes(256 * GIB), 256 * KIB);
  t.is(digestBlockBytes(256 * GIB + 4096), undefined);
  t.true(Math.ceil((256 * GIB) / (256 * KIB)) <= DIGEST_MAX_BLOCKS);
});

test('a digest hashes every block, the last one short; differing blocks give their pages', async (t) => {
  const image = Buffer.alloc(64 * KIB * 3 + 8 * KIB, 1); // 3 full blocks and an 8 KiB tail: 50 pages
  const a = await computeDigest(image.length, 64 * KIB, hasherOf(image));
  t.is(a.hashes.length, 4);
  t.is(a.hashes[3], native.xxh64(image.subarray(192 * KIB)));
  const changed = Buffer.from(image);
  changed[70 * KIB] = 9; // block 1 (pages 16-31)
  changed[196 * KIB] = 9; // the tail block (pages 48-49)
  const b = await computeDigest(changed.length, 64 * KIB, hasherOf(changed));
  t.deepEqual(Array.from(differingPages(b, a, 4096, 50)), [...Array.from({ length: 16 }, (_, i) => 16 + i), 48, 49]);
  t.deepEqual(Array.from(differingPages(a, a, 4096, 50)), []);
  // Another layout (block size or count) compares as all different.
  t.is(differingPages(a, { blockBytes: 128 * KIB, hashes: new BigUint64Array(2) }, 4096, 50).length, 50);
  // A short read is an error, not a digest of zeros.
  await t.throwsAsync(computeDigest(image.length * 2, 64 * KIB, hasherOf(image)), { message: /image ended at block 4 of 7/ });
});

test('huge pages: a page spanning several blocks is owed once', (t) => {
  const ours = { blockBytes: 64 * KIB, hashes: BigUint64Array.from([1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n]) }; // 512 KiB = two 256 KiB pages
  const theirs = { blockBytes: 64 * KIB, hashes: BigUint64Array.from([1n, 0n, 0n, 4n, 5n, 6n, 7n, 0n]) };
  t.deepEqual(Array.from(differingPages(ours, theirs, 256 * KIB, 2)), [0, 1]);
});

test('wire form: little-endian u64 per block; a digest that cannot describe the image is refused', (t) => {
  const hashes = BigUint64Array.from([0x0102030405060708n, 0xffffffffffffffffn]);
  const bytes = digestHashesToBytes(hashes);
  t.is(bytes.toString('hex'), '0807060504030201ffffffffffffffff');
  t.deepEqual(digestFromWire(64 * KIB, bytes, 128 * KIB)?.hashes, hashes);
  t.is(digestFromWire(64 * KIB, bytes, 256 * KIB), undefined, 'wrong block count for the image');
  t.is(digestFromWire(4 * KIB, bytes, 8 * KIB), undefined, 'block size out of range');
});

// Compression back-off: which frames a replication source tries to compress, and when a compressed
// payload is worth sending.
import test from 'ava';
import { CompressionBackoff, MIN_COMPRESSION_SAVING } from '../../../shared/compression-backoff';

test('every frame is tried while compression pays', (t) => {
  const b = new CompressionBackoff();
  for (let i = 0; i < 10; i++) {
    t.true(b.shouldTry());
    t.true(b.record(1000, 300));
  }
  t.is(b.skipping, 0);
});

test('a payload that saves less than the minimum is sent raw', (t) => {
  const raw = 16384;
  t.true(new CompressionBackoff().record(raw, raw * (1 - MIN_COMPRESSION_SAVING)));
  t.false(new CompressionBackoff().record(raw, raw * (1 - MIN_COMPRESSION_SAVING) + 1));
  t.false(new CompressionBackoff().record(raw, raw + 40), 'grew');
});

test('misses skip 1, 2, 4 ... frames up to the cap, and one success ends the back-off', (t) => {
  const b = new CompressionBackoff(8);
  const skipped: number[] = [];
  for (let miss = 0; miss < 6; miss++) {
    t.false(b.record(4096, 4100));
    let n = 0;
    while (!b.shouldTry()) n++;
    skipped.push(n);
  }
  t.deepEqual(skipped, [1, 2, 4, 8, 8, 8]);
  t.true(b.record(4096, 1000));
  t.is(b.skipping, 0);
  t.true(b.shouldTry());
  t.false(b.record(4096, 4096));
  t.is(b.skipping, 1, 'back to the shortest skip after a success');
});

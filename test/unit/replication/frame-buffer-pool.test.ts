// Frame buffer reuse on the source: a buffer comes back only when every holder released it.
import test from 'ava';
import { FrameBufferPool } from '../../../agent/replication/frame-buffer-pool';

test('a buffer is reused only after every holder released it', (t) => {
  const pool = new FrameBufferPool(4096, 4);
  const a = pool.alloc(1000);
  t.is(a.length, 4096);
  const frame = a.subarray(16, 900);
  pool.retain(frame, 2);
  pool.release(frame);
  t.is(pool.freeCount, 0, 'one holder still reads it');
  t.not(pool.alloc(1000).buffer, a.buffer, 'not handed out while held');
  pool.release(frame);
  t.is(pool.freeCount, 1);
  pool.release(frame); // a stray extra release changes nothing
  t.is(pool.freeCount, 1);
  t.is(pool.alloc(4096).buffer, a.buffer, 'reused once released');
});

test('a buffer never retained, or too big for the pool, is not pooled', (t) => {
  const pool = new FrameBufferPool(4096, 4);
  const big = pool.alloc(10000);
  t.is(big.length, 10000);
  pool.retain(big, 1);
  pool.release(big);
  t.is(pool.freeCount, 0);
  const dropped = pool.alloc(100); // e.g. its frame was dropped before being sent
  pool.release(dropped);
  t.is(pool.freeCount, 0);
});

test('free buffers are bounded by maxFree and by trim()', (t) => {
  const pool = new FrameBufferPool(1024, 3);
  const bufs = Array.from({ length: 5 }, () => pool.alloc(1024));
  for (const b of bufs) pool.retain(b, 1);
  for (const b of bufs) pool.release(b);
  t.is(pool.freeCount, 3);
  pool.trim(1);
  t.is(pool.freeCount, 1);
  pool.trim(0);
  t.is(pool.freeCount, 1, 'at least one is kept');
  pool.trim(100);
  const more = Array.from({ length: 5 }, () => pool.alloc(1024));
  for (const b of more) pool.retain(b, 1);
  for (const b of more) pool.release(b);
  t.is(pool.freeCount, 3, 'never above maxFree');
});

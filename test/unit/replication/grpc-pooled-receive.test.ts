// Pins the reach into grpc-js that lets the shadow receive frames into reused memory
// (agent/replication/grpc-pooled-receive.ts) on the grpc-js version we ship: an upgrade that moves
// the server call's message decoder fails here instead of silently bringing the per-frame
// allocation back. Also checks the decoder against grpc-js's own on arbitrary chunkings.
import test from 'ava';
import { PooledMessageDecoder, ReceiveBufferPool, usePooledReceive } from '../../../agent/replication/grpc-pooled-receive';
import { retainFreedMemory } from '../../../agent/replication/replication-receiver';
import { startRawStreamServer } from '../../helpers/raw-grpc-stream';

function pseudoRandom(len: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(len);
  let x = seed;
  for (let i = 0; i < len; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

function framed(message: Buffer): Buffer {
  const p = Buffer.alloc(5);
  p.writeUInt32BE(message.length, 1);
  return Buffer.concat([p, message]);
}

interface DecoderLike {
  write(data: Buffer): Buffer[];
}

function grpcStreamDecoder(max: number): DecoderLike {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { StreamDecoder } = require('@grpc/grpc-js/build/src/stream-decoder') as { StreamDecoder: new (max: number) => DecoderLike };
  return new StreamDecoder(max);
}

test('decodes like grpc-js on any chunking; large messages land in pooled memory, which is reused', (t) => {
  const messages = [pseudoRandom(20_000, 1), Buffer.alloc(0), pseudoRandom(3, 2), pseudoRandom(7_000, 3), pseudoRandom(15_000, 4)];
  const wire = Buffer.concat(messages.map(framed));
  const pool = new ReceiveBufferPool({ minMessageBytes: 4096, minBufferBytes: 16 * 1024 });
  for (const chunk of [1, 2, 4, 5, 6, 1000, 16384, wire.length]) {
    const ours = new PooledMessageDecoder(1 << 20, pool);
    const theirs = grpcStreamDecoder(1 << 20);
    const a: Buffer[] = [];
    const b: Buffer[] = [];
    for (let off = 0; off < wire.length; off += chunk) {
      const piece = wire.subarray(off, Math.min(wire.length, off + chunk));
      a.push(...ours.write(piece));
      b.push(...theirs.write(piece));
    }
    t.is(a.length, messages.length, `chunk ${chunk}`);
    for (let i = 0; i < a.length; i++) t.true(a[i].equals(b[i]), `chunk ${chunk}, message ${i}`);
    // The three large messages came from the pool; the small ones did not.
    t.deepEqual(a.map((m) => pool.release(m)), [true, false, false, true, true]);
  }
  t.is(pool.allocated, 3, 'three buffers at once at most, then reused');
  t.is(pool.freeCount, 3);
});

test('a message above the limit is refused as grpc-js does', (t) => {
  const d = new PooledMessageDecoder(1000, new ReceiveBufferPool());
  t.throws(() => d.write(framed(Buffer.alloc(1001))), { message: /larger than max \(1001 vs 1000\)/ });
  t.is(new PooledMessageDecoder(-1, new ReceiveBufferPool()).write(framed(Buffer.alloc(2000))).length, 1, '-1: no limit');
});

test('the pool takes back only what it lent, once, and keeps at most maxFree buffers', (t) => {
  const pool = new ReceiveBufferPool({ maxFree: 1, minBufferBytes: 1024 });
  const a = pool.take(100);
  const b = pool.take(2000);
  t.is(a.length, 100);
  t.is(b.length, 2000);
  t.false(pool.release(Buffer.alloc(100)), 'not from the pool');
  t.true(pool.release(a.subarray(10, 20)), 'any view of a lent buffer');
  t.false(pool.release(a), 'second release');
  t.true(pool.release(b));
  t.is(pool.freeCount, 1);
  const c = pool.take(50);
  t.is(c.buffer, a.buffer, 'reused');
  t.is(pool.take(5000).length, 5000, 'larger than any free buffer: a new one');
  t.is(pool.allocated, 3);
});

test('a real grpc-js server call receives into the pool: every message byte for byte, memory reused', async (t) => {
  const pool = new ReceiveBufferPool();
  const received: Buffer[] = [];
  const installed: boolean[] = [];
  const pooled: boolean[] = [];
  const echo = await startRawStreamServer('PooledReceive', (call) => {
    installed.push(usePooledReceive(call, pool));
    call.on('data', (m: Buffer) => {
      received.push(Buffer.from(m));
      pooled.push(pool.release(m));
    });
  });
  try {
    const sent = Array.from({ length: 24 }, (_, i) => pseudoRandom(i % 4 === 3 ? 500 : (1 << 20) + 37 * i, 100 + i));
    await echo.send(sent);
    t.deepEqual(installed, [true]);
    t.is(received.length, sent.length);
    for (let i = 0; i < sent.length; i++) t.true(received[i].equals(sent[i]), `message ${i}`);
    t.deepEqual(pooled, sent.map((m) => m.length >= pool.minMessageBytes), 'large messages came from the pool');
    t.true(pool.allocated < 18, `${pool.allocated} buffers allocated for 18 large messages`);
  } finally {
    echo.close();
  }
});

test('anything that is not a fresh grpc-js call decoder is left alone', (t) => {
  const pool = new ReceiveBufferPool();
  t.false(usePooledReceive(undefined, pool));
  t.false(usePooledReceive({}, pool));
  t.false(usePooledReceive({ call: { nextCall: {} } }, pool));
  const busy = grpcStreamDecoder(100) as DecoderLike & object;
  busy.write(Buffer.from([0, 0, 0, 0, 10, 1, 2])); // inside a message
  const holder = { call: { decoder: busy } };
  t.false(usePooledReceive(holder, pool));
  t.is(holder.call.decoder, busy);
});

test('the receiving process keeps freed memory for reuse (glibc malloc, as on the hosts we ship to)', (t) => {
  t.true(retainFreedMemory());
  t.true(retainFreedMemory(), 'once per process, same answer after');
});

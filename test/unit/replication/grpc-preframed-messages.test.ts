// Pins the reach into grpc-js that lets the delta stream send frames without grpc-js copying them
// (agent/replication/grpc-preframed-messages.ts) on the grpc-js version we ship: an upgrade that
// moves its identity framing fails here instead of silently bringing the copy back.
import test from 'ava';
import { GRPC_MESSAGE_PREFIX_BYTES, installPreframedMessages, markPreframed } from '../../../agent/replication/grpc-preframed-messages';
import { startRawStreamServer } from '../../helpers/raw-grpc-stream';

/** A message of `len` pseudo-random bytes with `headroom` bytes in front of it in its own memory. */
function messageWithHeadroom(len: number, headroom: number, seed: number): Buffer {
  const mem = Buffer.allocUnsafeSlow(headroom + len);
  mem.fill(0xee, 0, headroom);
  let x = seed;
  for (let i = headroom; i < mem.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    mem[i] = x >>> 24;
  }
  return mem.subarray(headroom);
}

interface FilterLike {
  sendMessage(m: Promise<{ message: Buffer; flags?: number }>): Promise<{ message: Buffer }>;
}

function identityFilter(): FilterLike {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { CompressionFilter } = require('@grpc/grpc-js/build/src/compression-filter') as { CompressionFilter: new (o: object, s: object) => FilterLike };
  return new CompressionFilter({}, {});
}

test('installs on the grpc-js we ship: a marked message is framed in place, an unmarked one is still copied', async (t) => {
  t.true(installPreframedMessages());
  t.true(installPreframedMessages(), 'idempotent');
  const marked = messageWithHeadroom(300_000, 16, 1);
  const copyOfMarked = Buffer.from(marked);
  markPreframed(marked);
  const out = (await identityFilter().sendMessage(Promise.resolve({ message: marked }))).message;
  t.is(out.buffer, marked.buffer, 'same memory: not copied');
  t.is(out.byteOffset, marked.byteOffset - GRPC_MESSAGE_PREFIX_BYTES);
  t.is(out[0], 0, 'not compressed');
  t.is(out.readUInt32BE(1), marked.length);
  t.true(out.subarray(GRPC_MESSAGE_PREFIX_BYTES).equals(copyOfMarked), 'message bytes untouched');

  const plain = messageWithHeadroom(1000, 16, 2);
  const outPlain = (await identityFilter().sendMessage(Promise.resolve({ message: plain }))).message;
  t.not(outPlain.buffer, plain.buffer, 'an unmarked message takes grpc-js\'s own (copying) path');
  t.true(outPlain.subarray(GRPC_MESSAGE_PREFIX_BYTES).equals(plain));

  // A message with no room in front of it is never marked (nothing to overwrite).
  const noRoom = Buffer.allocUnsafeSlow(100);
  markPreframed(noRoom);
  const outNoRoom = (await identityFilter().sendMessage(Promise.resolve({ message: noRoom }))).message;
  t.not(outNoRoom.buffer, noRoom.buffer);
});

test('a real grpc-js stream carries marked and unmarked messages byte for byte, in order', async (t) => {
  t.true(installPreframedMessages());
  const received: Buffer[] = [];
  const echo = await startRawStreamServer('Preframed', (call) => call.on('data', (m: Buffer) => received.push(Buffer.from(m))), { 'grpc.enable_retries': 0 });
  try {
    const messages = Array.from({ length: 12 }, (_, i) => messageWithHeadroom(i % 3 === 2 ? 777 : (1 << 20) + i, 16, 10 + i));
    const sent = messages.map((m) => Buffer.from(m));
    await echo.send(messages, (m, i) => {
      if (i % 3 !== 1) markPreframed(m);
    });
    t.is(received.length, sent.length);
    for (let i = 0; i < sent.length; i++) t.true(received[i].equals(sent[i]), `message ${i}`);
  } finally {
    echo.close();
  }
});

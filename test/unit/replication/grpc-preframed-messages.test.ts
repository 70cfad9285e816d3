// Pins the reach into grpc-js that lets the delta stream send frames without grpc-js copying them
// (agent/replication/grpc-preframed-messages.ts) on the grpc-js version we ship: an upgrade that
// moves its identity framing fails here instead of silently bringing the copy back.
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { GRPC_MESSAGE_PREFIX_BYTES, installPreframedMessages, markPreframed } from '../../../agent/replication/grpc-preframed-messages';

const raw = (b: Buffer) => b;
const SERVICE: grpc.ServiceDefinition = {
  Stream: { path: '/umbra.test.Preframed/Stream', requestStream: true, responseStream: true, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw },
};

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
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 16 << 20 });
  const received: Buffer[] = [];
  server.addService(SERVICE, {
    Stream(call: grpc.ServerDuplexStream<Buffer, Buffer>) {
      call.on('data', (m: Buffer) => received.push(Buffer.from(m)));
      call.on('end', () => {
        call.write(Buffer.from('done'));
        call.end();
      });
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  const Client = grpc.makeGenericClientConstructor(SERVICE, 'Preframed');
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': 16 << 20, 'grpc.enable_retries': 0 });
  const sent: Buffer[] = [];
  try {
    const stream = (client as unknown as { Stream: () => grpc.ClientDuplexStream<Buffer, Buffer> }).Stream();
    await new Promise<void>((resolve, reject) => {
      stream.on('data', () => undefined);
      stream.on('end', resolve);
      stream.on('error', reject);
      for (let i = 0; i < 12; i++) {
        const m = messageWithHeadroom(i % 3 === 2 ? 777 : (1 << 20) + i, 16, 10 + i);
        sent.push(Buffer.from(m));
        if (i % 3 !== 1) markPreframed(m);
        stream.write(m);
      }
      stream.end();
    });
    t.is(received.length, sent.length);
    for (let i = 0; i < sent.length; i++) t.true(received[i].equals(sent[i]), `message ${i}`);
  } finally {
    client.close();
    server.forceShutdown();
  }
});

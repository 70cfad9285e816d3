// The shadow widens the HTTP/2 receive window of a replication connection by reaching into grpc-js
// call internals; this pins that reach on the grpc-js version we ship, so an upgrade that moves
// them fails here instead of silently halving the delta stream's speed.
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import type * as http2 from 'node:http2';
import { STREAM_RECEIVE_WINDOW_BYTES, widenReceiveWindow } from '../../../agent/replication/replication-service';

const raw = (b: Buffer) => b;
const SERVICE: grpc.ServiceDefinition = {
  Stream: { path: '/umbra.test.Window/Stream', requestStream: true, responseStream: true, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw },
};

test('a real grpc-js server call: the connection and stream windows are raised', async (t) => {
  const server = new grpc.Server();
  const seen: Array<{ widened: boolean; connWindow?: number }> = [];
  server.addService(SERVICE, {
    Stream(call: grpc.ServerDuplexStream<Buffer, Buffer>) {
      const widened = widenReceiveWindow(call);
      const internals = (call as unknown as { call?: { stream?: http2.ServerHttp2Stream; nextCall?: { stream?: http2.ServerHttp2Stream } } }).call;
      const session = (internals?.stream ?? internals?.nextCall?.stream)?.session;
      seen.push({ widened, connWindow: session?.state.localWindowSize });
      call.write(Buffer.from('ok'));
      call.end();
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  const Client = grpc.makeGenericClientConstructor(SERVICE, 'Window');
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  try {
    const stream = (client as unknown as { Stream: () => grpc.ClientDuplexStream<Buffer, Buffer> }).Stream();
    await new Promise<void>((resolve, reject) => {
      stream.on('data', () => undefined);
      stream.on('end', resolve);
      stream.on('error', reject);
      stream.write(Buffer.from('hello'));
      stream.end();
    });
    t.is(seen.length, 1);
    t.true(seen[0].widened);
    t.true((seen[0].connWindow ?? 0) >= STREAM_RECEIVE_WINDOW_BYTES, `connection window ${seen[0].connWindow}`);
  } finally {
    client.close();
    server.forceShutdown();
  }
});

test('anything that is not a grpc-js call is left alone', (t) => {
  t.false(widenReceiveWindow(undefined));
  t.false(widenReceiveWindow({}));
  t.false(widenReceiveWindow({ call: { nextCall: {} } }));
});

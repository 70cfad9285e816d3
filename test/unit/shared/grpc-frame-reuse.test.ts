// Cached answers are framed once and the same frame is sent on every call; other answers are framed
// per call as grpc-js does. Runs against the grpc-js we ship: fails if an upgrade moves the server
// call's serializeMessage that the wrapper replaces.
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import * as serverInterceptors from '@grpc/grpc-js/build/src/server-interceptors';
import { frameMessage, installFrameReuse, markReusable, reusableFrame } from '../../../shared/grpc-frame-reuse';
import { startGrpcServer } from '../../../shared/grpc-server';
import { dial, callUnary } from '../../../shared/grpc-client';

type SerializeThis = { handler: { serialize: (v: unknown) => Buffer } };
const proto = (serverInterceptors as unknown as { BaseServerInterceptingCall: { prototype: { serializeMessage: (this: SerializeThis, v: unknown) => Buffer } } })
  .BaseServerInterceptingCall.prototype;

test('the grpc-js server call is wrapped', (t) => {
  t.true(installFrameReuse());
  t.true(installFrameReuse(), 'installing twice is harmless');
});

test('a registered message gets one frame, reused; others get a new frame each time', (t) => {
  installFrameReuse();
  const cached = Buffer.from('cached answer');
  const oneOff = Buffer.from('one-off answer');
  markReusable(cached);
  const self = (b: Buffer): SerializeThis => ({ handler: { serialize: () => b } });
  const a = proto.serializeMessage.call(self(cached), {});
  const b = proto.serializeMessage.call(self(cached), {});
  t.is(a, b);
  t.deepEqual(a, frameMessage(cached));
  t.is(a.readUInt8(0), 0);
  t.is(a.readUInt32BE(1), cached.length);
  t.deepEqual(a.subarray(5), cached);
  const c = proto.serializeMessage.call(self(oneOff), {});
  const d = proto.serializeMessage.call(self(oneOff), {});
  t.not(c, d);
  t.deepEqual(c, d);
  t.deepEqual(c.subarray(5), oneOff);
  t.is(reusableFrame(oneOff), undefined);
});

test('a server answering with the same object and with new ones: every answer decodes right', async (t) => {
  const cached = { hosts: [{ facts: { host_id: 'hv-1' }, state: 'HOST_STATE_UP' }] };
  let next: 'cached' | 'fresh' = 'cached';
  const server = await startGrpcServer({
    listen: '127.0.0.1:0',
    credentials: grpc.ServerCredentials.createInsecure(),
    services: [
      {
        name: 'umbra.coordinator.v1.CoordinatorService',
        handlers: {
          ListHosts: (_call: unknown, cb: grpc.sendUnaryData<unknown>) =>
            cb(null, next === 'cached' ? cached : { hosts: [{ facts: { host_id: 'hv-2' }, state: 'HOST_STATE_DOWN' }] }),
        },
      },
    ],
  });
  const client = dial('umbra.coordinator.v1.CoordinatorService', `127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
  try {
    const ids = async () => (await callUnary<{ hosts: Array<{ facts: { host_id: string }; state: string }> }>(client, 'ListHosts', {})).hosts.map((h) => `${h.facts.host_id}:${h.state}`);
    for (let i = 0; i < 3; i++) t.deepEqual(await ids(), ['hv-1:HOST_STATE_UP']);
    next = 'fresh';
    t.deepEqual(await ids(), ['hv-2:HOST_STATE_DOWN']);
    next = 'cached';
    t.deepEqual(await ids(), ['hv-1:HOST_STATE_UP']);
  } finally {
    client.close();
    await server.close();
  }
});

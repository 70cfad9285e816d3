// The caller's identity is read from its certificate once per HTTP/2 session (one TLS connection)
// and reused for that session's later calls; another session is read on its own.
import test from 'ava';
import type * as grpc from '@grpc/grpc-js';
import { HandlerKit, type CallContext } from '../../../shared/grpc-handlers';
import { silentLogger } from '../../../shared/log';

function fakeCall(session: object, san: string, reads: { n: number }) {
  return {
    request: {},
    call: { stream: { session } },
    getAuthContext: () => {
      reads.n++;
      return { sslPeerCertificate: { subjectaltname: san } };
    },
    getPeer: () => '127.0.0.1:1',
    on: () => undefined,
  };
}

async function callOnce(handler: grpc.handleUnaryCall<unknown, unknown>, call: object): Promise<{ err: grpc.ServiceError | null; res: unknown }> {
  return new Promise((resolve) => handler(call as never, ((err: grpc.ServiceError | null, res: unknown) => resolve({ err, res })) as never));
}

test('one certificate read per session; each session keeps its own identity', async (t) => {
  const kit = new HandlerKit(silentLogger());
  const handler = kit.unary<unknown, string>('Who', ['agent', 'operator'], async (_req, ctx: CallContext) => `${ctx.peer.role}/${ctx.peer.name}`);
  const reads = { n: 0 };
  const sessionA = { destroyed: false };
  const sessionB = { destroyed: false };
  for (let i = 0; i < 3; i++) t.is((await callOnce(handler, fakeCall(sessionA, 'URI:umbra://agent/hv-1', reads))).res, 'agent/hv-1');
  t.is(reads.n, 1);
  t.is((await callOnce(handler, fakeCall(sessionB, 'URI:umbra://operator/alice', reads))).res, 'operator/alice');
  t.is(reads.n, 2);
});

test('a session whose certificate carries no identity stays refused on every call', async (t) => {
  const kit = new HandlerKit(silentLogger());
  const handler = kit.unary<unknown, string>('Who', ['agent'], async () => 'ok');
  const reads = { n: 0 };
  const session = { destroyed: false };
  for (let i = 0; i < 2; i++) {
    const { err } = await callOnce(handler, fakeCall(session, 'DNS:example.org', reads));
    t.is(err?.code, 16); // UNAUTHENTICATED
  }
});

test('without reachable session internals the certificate is read on each call', async (t) => {
  const kit = new HandlerKit(silentLogger());
  const handler = kit.unary<unknown, string>('Who', ['agent'], async (_req, ctx) => ctx.peer.name);
  const reads = { n: 0 };
  for (let i = 0; i < 2; i++) {
    const call = { ...fakeCall({}, 'URI:umbra://agent/hv-2', reads), call: undefined };
    t.is((await callOnce(handler, call)).res, 'hv-2');
  }
  t.is(reads.n, 2);
});

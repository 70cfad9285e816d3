// A handler's ctx.signal is made on first use, and still reports a cancellation that came before
// (or after) that first use.
import test from 'ava';
import { EventEmitter } from 'node:events';
import type * as grpc from '@grpc/grpc-js';
import { HandlerKit, type CallContext } from '../../../shared/grpc-handlers';
import { silentLogger } from '../../../shared/log';

function fakeCall() {
  const e = new EventEmitter();
  return Object.assign(e, {
    request: {},
    getAuthContext: () => ({ sslPeerCertificate: { subjectaltname: 'URI:umbra://operator/alice' } }),
    getPeer: () => '127.0.0.1:1',
  });
}

function run(fn: (ctx: CallContext, call: EventEmitter) => Promise<string>): Promise<string> {
  const kit = new HandlerKit(silentLogger());
  const call = fakeCall();
  const handler = kit.unary<unknown, string>('Watch', ['operator'], (_req, ctx) => fn(ctx, call));
  return new Promise((resolve, reject) =>
    handler(call as never, ((err: grpc.ServiceError | null, res: string) => (err ? reject(err) : resolve(res))) as never),
  );
}

test('cancelled before the signal is first read: it is already aborted', async (t) => {
  const res = await run(async (ctx, call) => {
    call.emit('cancelled');
    return String(ctx.signal.aborted);
  });
  t.is(res, 'true');
});

test('cancelled after the signal is read: abort fires', async (t) => {
  const res = await run(async (ctx, call) => {
    const signal = ctx.signal;
    t.false(signal.aborted);
    const fired = new Promise<string>((resolve) => signal.addEventListener('abort', () => resolve('aborted'), { once: true }));
    call.emit('cancelled');
    return fired;
  });
  t.is(res, 'aborted');
});

test('the same signal on every read; not aborted without a cancellation', async (t) => {
  const res = await run(async (ctx) => String(ctx.signal === ctx.signal && !ctx.signal.aborted));
  t.is(res, 'true');
});

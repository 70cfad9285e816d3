// Requests on one rtnetlink socket run one at a time (a dump's parts must not interleave with
// another answer); a failed request does not stop the ones queued behind it.
import test from 'ava';
import type { RtNetlinkSocket } from 'netlink';
import { callNetlink, type NetlinkContext } from '../../../agent/net/netlink-call';
import { NetlinkRequestError } from '../../../agent/net/net-errors';
import { SerialQueue } from '../../../shared/serial-queue';

const ctx = (): NetlinkContext => ({ socket: {} as RtNetlinkSocket, timeoutMs: 100, queue: new SerialQueue() });

test('a request is issued only after the one before it on the socket has answered', async (t) => {
  const c = ctx();
  const log: string[] = [];
  const slowDump = callNetlink(c, 'list links', async () => {
    log.push('dump sent');
    await new Promise((r) => setTimeout(r, 30));
    log.push('dump answered');
    return ['lo', 'eth0'];
  });
  const get = callNetlink(c, 'get link eth0', async () => {
    log.push('get sent');
    return 'eth0';
  });
  t.deepEqual(await Promise.all([slowDump, get]), [['lo', 'eth0'], 'eth0']);
  t.deepEqual(log, ['dump sent', 'dump answered', 'get sent']);
});

test('a refused request fails with the operation named, and the next one still runs', async (t) => {
  const c = ctx();
  const refused = callNetlink(c, 'add route 10.0.0.9/32', async () => {
    throw new Error('Request rejected: EEXIST');
  });
  const next = callNetlink(c, 'list routes', async (o) => o.timeout);
  const err = await t.throwsAsync(refused, { instanceOf: NetlinkRequestError });
  t.regex(err!.message, /add route 10\.0\.0\.9\/32/);
  t.is(await next, 100, 'runs with the context timeout');
});

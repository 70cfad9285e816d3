// FencingGuard: monotonic per-VM tokens, persisted, refusing stale ones with both tokens named.
import test from 'ava';
import { FENCING_KEY_PREFIX, FencingGuard } from '../../../agent/net/fencing-guard';
import { StaleFencingTokenError } from '../../../agent/net/net-errors';
import { MemoryKvStore } from './fakes/memory-kv-store';

test('first token is accepted and persisted', async (t) => {
  const kv = new MemoryKvStore();
  const g = new FencingGuard(kv, () => 1234);
  t.deepEqual(await g.admit('vm1', 5), { token: 5, reapplied: false });
  t.deepEqual(await kv.get(FENCING_KEY_PREFIX + 'vm1'), { version: 1, token: 5, acceptedAtMs: 1234 });
});

test('newer tokens replace, equal tokens re-apply without a write, older ones are refused', async (t) => {
  const kv = new MemoryKvStore();
  const g = new FencingGuard(kv);
  await g.admit('vm1', 5);
  t.deepEqual(await g.admit('vm1', 9), { token: 9, previousToken: 5, reapplied: false });
  const puts = kv.puts;
  t.deepEqual(await g.admit('vm1', 9), { token: 9, previousToken: 9, reapplied: true });
  t.is(kv.puts, puts);
  const err = await t.throwsAsync(g.admit('vm1', 8), { instanceOf: StaleFencingTokenError });
  t.is(err!.reason, 'FAILED_PRECONDITION');
  t.is((err as StaleFencingTokenError).offeredToken, 8);
  t.is((err as StaleFencingTokenError).acceptedToken, 9);
  t.regex(err!.message, /\b8\b.*\b9\b/);
  t.is(await g.current('vm1'), 9);
});

test('tokens are per VM', async (t) => {
  const g = new FencingGuard(new MemoryKvStore());
  await g.admit('vm1', 100);
  await t.notThrowsAsync(g.admit('vm2', 1));
});

test('a new guard on the same store remembers the highest token', async (t) => {
  const kv = new MemoryKvStore();
  await new FencingGuard(kv).admit('vm1', 42);
  await t.throwsAsync(new FencingGuard(kv).admit('vm1', 41), { instanceOf: StaleFencingTokenError });
});

test('concurrent admits are serialised: the lower one racing a higher one is refused', async (t) => {
  const g = new FencingGuard(new MemoryKvStore());
  const [hi, lo] = await Promise.allSettled([g.admit('vm1', 10), g.admit('vm1', 3)]);
  t.is(hi.status, 'fulfilled');
  t.is(lo.status, 'rejected');
  t.is(await g.current('vm1'), 10);
});

test('malformed tokens and ids are invalid arguments', async (t) => {
  const g = new FencingGuard(new MemoryKvStore());
  for (const bad of [-1, 1.5, Number.NaN, 2 ** 60, '3' as unknown as number]) {
    await t.throwsAsync(g.admit('vm1', bad), { message: /fencing_token/ });
  }
  await t.throwsAsync(g.admit('', 1), { message: /vm_id/ });
});

test('an unreadable record refuses rather than dropping the fence', async (t) => {
  const kv = new MemoryKvStore();
  await kv.put(FENCING_KEY_PREFIX + 'vm1', { garbage: true });
  const err = await t.throwsAsync(new FencingGuard(kv).admit('vm1', 1));
  t.is((err as { reason?: string }).reason, 'FAILED_PRECONDITION');
});

test('the highest token is kept in memory once known: a re-applied token reads nothing from the store', async (t) => {
  const kv = new MemoryKvStore();
  await new FencingGuard(kv).admit('vm1', 4);
  const g = new FencingGuard(kv);
  let gets = 0;
  const get = kv.get.bind(kv);
  kv.get = async <T>(key: string) => {
    gets++;
    return get<T>(key);
  };
  t.is(await g.current('vm1'), 4, 'read from the store once');
  t.deepEqual(await g.admit('vm1', 4), { token: 4, previousToken: 4, reapplied: true });
  await g.admit('vm1', 6);
  t.deepEqual(await g.admit('vm1', 6), { token: 6, previousToken: 6, reapplied: true });
  await t.throwsAsync(g.admit('vm1', 5), { instanceOf: StaleFencingTokenError });
  t.is(gets, 1);
});

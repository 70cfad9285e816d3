import test from 'ava';
import { HostListCache, HOST_LIST_MAX_AGE_MS } from '../../../coordinator/api/host-list-cache';
import { EventLog } from '../../../coordinator/core/event-log';
import { HostRegistry } from '../../../coordinator/core/host-registry';
import { EMPTY_USAGE } from '../../../shared/host-types';
import { MemoryKvStore } from '../../fakes/memory-kv-store';
import { ManualClock } from '../../fakes/manual-clock';
import { hostFacts } from '../../fakes/host-facts';

async function setup() {
  const clock = new ManualClock();
  const store = new MemoryKvStore();
  const registry = await HostRegistry.open(store, await EventLog.open(store, clock.now), { suspectAfterMs: 3000, downAfterMs: 9000 }, clock.now);
  return { clock, registry, cache: new HostListCache(registry, clock.now) };
}

test('the same answer object is served until it is too old', async (t) => {
  const { clock, registry, cache } = await setup();
  await registry.register(hostFacts('h1'));
  const a = cache.get([], 'HOST_VIEW_BASIC');
  await registry.heartbeat('h1', { ...EMPTY_USAGE, cpu_load_ratio: 0.9 });
  clock.advance(HOST_LIST_MAX_AGE_MS - 1);
  t.is(cache.get([], 'HOST_VIEW_BASIC'), a, 'heartbeats alone do not rebuild within the age bound');
  clock.advance(2);
  const b = cache.get([], 'HOST_VIEW_BASIC');
  t.not(b, a);
  t.is(b.hosts[0].usage.cpu_load_ratio, 0.9);
});

test('registration, state changes and removal rebuild at once', async (t) => {
  const { clock, registry, cache } = await setup();
  await registry.register(hostFacts('h1'));
  t.is(cache.get([], 'HOST_VIEW_BASIC').hosts.length, 1);
  await registry.register(hostFacts('h2'));
  t.is(cache.get([], 'HOST_VIEW_BASIC').hosts.length, 2);
  clock.advance(3500);
  await registry.sweep();
  t.deepEqual(cache.get(['HOST_STATE_SUSPECT'], 'HOST_VIEW_BASIC').hosts.map((h) => h.facts.host_id), ['h1', 'h2']);
  await registry.remove('h1');
  t.deepEqual(cache.get([], 'HOST_VIEW_BASIC').hosts.map((h) => h.facts.host_id), ['h2']);
});

test('views and filters are cached apart; the basic view drops flags and NICs', async (t) => {
  const { registry, cache } = await setup();
  await registry.register(hostFacts('h1'));
  const basic = cache.get([], 'HOST_VIEW_BASIC');
  const full = cache.get([], 'HOST_VIEW_FULL');
  t.deepEqual(basic.hosts[0].facts.capacity.cpu_flags, []);
  t.deepEqual(basic.hosts[0].facts.capacity.nics, []);
  t.deepEqual(full.hosts[0].facts.capacity.cpu_flags, ['avx2', 'sse4_2']);
  t.is(cache.get(['HOST_STATE_DOWN'], 'HOST_VIEW_BASIC').hosts.length, 0);
});

import test from 'ava';
import { EventLog } from '../../../coordinator/core/event-log';
import { HostRegistry } from '../../../coordinator/core/host-registry';
import { NotFoundError } from '../../../shared/errors';
import { EMPTY_USAGE } from '../../../shared/host-types';
import { MemoryKvStore } from '../../fakes/memory-kv-store';
import { ManualClock } from '../../fakes/manual-clock';
import { hostFacts } from '../../fakes/host-facts';

const timeouts = { suspectAfterMs: 3000, downAfterMs: 9000 };

async function setup(store = new MemoryKvStore(), clock = new ManualClock()) {
  const events = await EventLog.open(store, clock.now);
  const registry = await HostRegistry.open(store, events, timeouts, clock.now);
  return { store, clock, events, registry };
}

test('a new host joins UP and the event is logged', async (t) => {
  const { registry, events } = await setup();
  const rec = await registry.register(hostFacts('h1'));
  t.is(rec.state, 'HOST_STATE_UP');
  const log = await events.list(0, 10);
  t.deepEqual(log.map((e) => [e.sequence, e.kind, e.host_id]), [[1, 'EVENT_KIND_HOST_JOINED', 'h1']]);
});

test('silence makes a host suspect, then down; a heartbeat brings it back up', async (t) => {
  const { registry, clock, events } = await setup();
  await registry.register(hostFacts('h1'));
  clock.advance(2000);
  t.deepEqual(await registry.sweep(), []);
  clock.advance(1500);
  await registry.sweep();
  t.is(registry.get('h1').state, 'HOST_STATE_SUSPECT');
  clock.advance(6000);
  await registry.sweep();
  t.is(registry.get('h1').state, 'HOST_STATE_DOWN');
  await registry.heartbeat('h1', { ...EMPTY_USAGE, cpu_load_ratio: 0.5 });
  t.is(registry.get('h1').state, 'HOST_STATE_UP');
  t.is(registry.get('h1').usage.cpu_load_ratio, 0.5);
  const kinds = (await events.list(0, 10)).map((e) => `${e.kind}:${e.previous_state ?? ''}>${e.new_state ?? ''}`);
  t.deepEqual(kinds, [
    'EVENT_KIND_HOST_JOINED:>HOST_STATE_UP',
    'EVENT_KIND_HOST_STATE_CHANGED:HOST_STATE_UP>HOST_STATE_SUSPECT',
    'EVENT_KIND_HOST_STATE_CHANGED:HOST_STATE_SUSPECT>HOST_STATE_DOWN',
    'EVENT_KIND_HOST_STATE_CHANGED:HOST_STATE_DOWN>HOST_STATE_UP',
  ]);
});

test('a heartbeat from an unknown host is NOT_FOUND', async (t) => {
  const { registry } = await setup();
  await t.throwsAsync(registry.heartbeat('ghost', EMPTY_USAGE), { instanceOf: NotFoundError });
});

test('a restarted coordinator knows its hosts and gives them a grace period', async (t) => {
  const first = await setup();
  await first.registry.register(hostFacts('h1'));
  await first.registry.register(hostFacts('h2'));
  first.clock.advance(60_000); // the coordinator was down for a minute
  const second = await setup(first.store, first.clock);
  t.deepEqual(second.registry.list().map((h) => h.facts.host_id), ['h1', 'h2']);
  t.deepEqual(await second.registry.sweep(), [], 'no host is marked suspect for our own downtime');
  second.clock.advance(3500);
  await second.registry.sweep();
  t.is(second.registry.get('h1').state, 'HOST_STATE_SUSPECT');
  t.is(second.events.last, 4, 'the event log continues its numbering');
});

test('re-registration keeps the join time and logs a re-register event', async (t) => {
  const { registry, clock, events } = await setup();
  const a = await registry.register(hostFacts('h1'));
  clock.advance(10_000);
  const b = await registry.register(hostFacts('h1', { agent_endpoint: '10.0.0.9:7701' }));
  t.is(b.registered_at_unix_ms, a.registered_at_unix_ms);
  t.is(b.facts.agent_endpoint, '10.0.0.9:7701');
  t.is((await events.list(1, 10))[0].kind, 'EVENT_KIND_HOST_REREGISTERED');
});

test('a failed write changes nothing', async (t) => {
  const { registry, store, events } = await setup();
  store.failNextWrite = new Error('disk full');
  await t.throwsAsync(registry.register(hostFacts('h1')), { message: 'disk full' });
  t.deepEqual(registry.list(), []);
  t.is(store.data.size, 0);
  await registry.register(hostFacts('h1'));
  t.is(registry.list().length, 1);
  t.truthy(events);
});

test('remove forgets the host and logs HOST_LEFT; filters by state work', async (t) => {
  const { registry, events, clock } = await setup();
  await registry.register(hostFacts('h1'));
  await registry.register(hostFacts('h2'));
  clock.advance(4000);
  await registry.heartbeat('h2', EMPTY_USAGE);
  await registry.sweep();
  t.deepEqual(registry.list(['HOST_STATE_SUSPECT']).map((h) => h.facts.host_id), ['h1']);
  await registry.remove('h1');
  t.throws(() => registry.get('h1'), { instanceOf: NotFoundError });
  const last = (await events.list(0, 100)).pop();
  t.is(last?.kind, 'EVENT_KIND_HOST_LEFT');
});

test('event listing pages forward without gaps', async (t) => {
  const { events } = await setup();
  for (let i = 0; i < 25; i++) await events.append({ kind: 'EVENT_KIND_HOST_JOINED', host_id: `h${i}`, message: 'm' });
  const p1 = await events.list(0, 10);
  const p2 = await events.list(p1[p1.length - 1].sequence, 10);
  const p3 = await events.list(p2[p2.length - 1].sequence, 10);
  t.deepEqual([...p1, ...p2, ...p3].map((e) => e.sequence), Array.from({ length: 25 }, (_, i) => i + 1));
});

test('hosts are counted per liveness state, as list() filters them', async (t) => {
  const { registry, clock } = await setup();
  t.deepEqual(registry.countByState(), { HOST_STATE_UP: 0, HOST_STATE_SUSPECT: 0, HOST_STATE_DOWN: 0 });
  await registry.register(hostFacts('h1'));
  await registry.register(hostFacts('h2'));
  await registry.register(hostFacts('h3'));
  clock.advance(4000);
  await registry.heartbeat('h3', EMPTY_USAGE);
  await registry.sweep(); // h1, h2 suspect
  clock.advance(6000);
  await registry.heartbeat('h2', EMPTY_USAGE); // h2 back up
  await registry.sweep(); // h1 down, h3 suspect
  const counts = registry.countByState();
  t.deepEqual(counts, { HOST_STATE_UP: 1, HOST_STATE_SUSPECT: 1, HOST_STATE_DOWN: 1 });
  for (const s of ['HOST_STATE_UP', 'HOST_STATE_SUSPECT', 'HOST_STATE_DOWN'] as const) t.is(counts[s], registry.list([s]).length);
});

import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LevelStore } from '../../../shared/level-store';
import { EventLog } from '../../../coordinator/core/event-log';
import { HostRegistry } from '../../../coordinator/core/host-registry';
import { NotFoundError } from '../../../shared/errors';
import { EMPTY_USAGE } from '../../../shared/host-types';
import { MemoryKvStore } from '../../fakes/memory-kv-store';
import { ManualClock } from '../../fakes/manual-clock';
import { hostFacts } from '../../fakes/host-facts';

const timeouts = { suspectAfterMs: 3000, downAfterMs: 9000 };

async function setupWithGrace(store: MemoryKvStore, clock: ManualClock, restartGraceMs: number) {
  const events = await EventLog.open(store, clock.now);
  const registry = await HostRegistry.open(store, events, { ...timeouts, restartGraceMs }, clock.now);
  return { store, clock, events, registry };
}

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

test('a restarted coordinator knows its hosts and judges silent ones only after the restart grace', async (t) => {
  const first = await setup();
  await first.registry.register(hostFacts('h1'));
  await first.registry.register(hostFacts('h2'));
  first.clock.advance(60_000); // the coordinator was down for a minute
  const second = await setupWithGrace(first.store, first.clock, 20_000);
  t.deepEqual(second.registry.list().map((h) => h.facts.host_id), ['h1', 'h2']);
  t.deepEqual(second.registry.listAwaitingContact(), ['h1', 'h2']);
  // Well past the suspect and down timeouts, but inside the grace: no verdict, no event.
  for (let i = 0; i < 19; i++) {
    second.clock.advance(1000);
    t.deepEqual(await second.registry.sweep(), []);
  }
  t.is(second.registry.get('h1').state, 'HOST_STATE_UP', 'the stored state stays during the grace');
  t.true(second.registry.awaitingContact('h1'));
  t.is(second.events.last, 2, 'nothing logged for our own downtime');
  second.clock.advance(1000); // the grace is over: silent hosts are suspect...
  t.deepEqual((await second.registry.sweep()).map((h) => h.facts.host_id), ['h1', 'h2']);
  t.is(second.registry.get('h1').state, 'HOST_STATE_SUSPECT');
  t.false(second.registry.awaitingContact('h1'));
  t.deepEqual(second.registry.listAwaitingContact(), []);
  second.clock.advance(5999);
  t.deepEqual(await second.registry.sweep(), []);
  second.clock.advance(1); // ...and down after down_after - suspect_after more
  await second.registry.sweep();
  t.is(second.registry.get('h2').state, 'HOST_STATE_DOWN');
  const log = (await second.events.list(2, 10)).map((e) => `${e.host_id}:${e.previous_state}>${e.new_state}`);
  t.deepEqual(log, ['h1:HOST_STATE_UP>HOST_STATE_SUSPECT', 'h2:HOST_STATE_UP>HOST_STATE_SUSPECT', 'h1:HOST_STATE_SUSPECT>HOST_STATE_DOWN', 'h2:HOST_STATE_SUSPECT>HOST_STATE_DOWN']);
  t.regex((await second.events.list(2, 1))[0].message, /not heard from since the coordinator started 20\.0 s ago/);
});

test('a host heard from during the restart grace is UP at once, with no state-change event', async (t) => {
  const first = await setup();
  await first.registry.register(hostFacts('h1'));
  await first.registry.register(hostFacts('h2'));
  first.clock.advance(60_000);
  const second = await setupWithGrace(first.store, first.clock, 20_000);
  second.clock.advance(8000); // the agent's backoff
  await second.registry.register(hostFacts('h1'));
  await second.registry.heartbeat('h2', EMPTY_USAGE);
  t.false(second.registry.awaitingContact('h1'));
  t.false(second.registry.awaitingContact('h2'));
  t.is(second.registry.get('h1').state, 'HOST_STATE_UP');
  t.is(second.registry.get('h2').last_heartbeat_unix_ms, second.clock.now());
  t.deepEqual(await second.registry.sweep(), []);
  // From now on they are judged by their heartbeats like any host.
  second.clock.advance(3500);
  await second.registry.heartbeat('h2', EMPTY_USAGE);
  await second.registry.sweep();
  t.is(second.registry.get('h1').state, 'HOST_STATE_SUSPECT');
  t.is(second.registry.get('h2').state, 'HOST_STATE_UP');
  const kinds = (await second.events.list(2, 10)).map((e) => `${e.kind}:${e.host_id}`);
  t.deepEqual(kinds, ['EVENT_KIND_HOST_REREGISTERED:h1', 'EVENT_KIND_HOST_STATE_CHANGED:h1']);
});

test('a host stored DOWN stays DOWN across a restart without contact (no false "up" event)', async (t) => {
  const first = await setup();
  await first.registry.register(hostFacts('h1'));
  first.clock.advance(10_000);
  await first.registry.sweep();
  t.is(first.registry.get('h1').state, 'HOST_STATE_DOWN');
  const before = first.events.last;
  first.clock.advance(30_000);
  const second = await setupWithGrace(first.store, first.clock, 5000);
  for (let i = 0; i < 20; i++) {
    second.clock.advance(1000);
    t.deepEqual(await second.registry.sweep(), []);
  }
  t.is(second.registry.get('h1').state, 'HOST_STATE_DOWN');
  t.is(second.events.last, before);
  await second.registry.register(hostFacts('h1'));
  t.is(second.registry.get('h1').state, 'HOST_STATE_UP');
});

test('no restart grace: restored hosts are suspect until heard from', async (t) => {
  const first = await setup();
  await first.registry.register(hostFacts('h1'));
  const second = await setupWithGrace(first.store, first.clock, 0);
  t.false(second.registry.awaitingContact('h1'));
  await second.registry.sweep();
  t.is(second.registry.get('h1').state, 'HOST_STATE_SUSPECT');
});

test('restart over a real LevelDB store: hosts restored, no verdict during the grace, verdicts after it', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'umbra-restartgrace-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const clock = new ManualClock();
  const db1 = await LevelStore.open(dir);
  try {
    const events = await EventLog.open(db1, clock.now);
    const registry = await HostRegistry.open(db1, events, { ...timeouts, restartGraceMs: 15_000 }, clock.now);
    await registry.register(hostFacts('hv-a'));
    await registry.register(hostFacts('hv-b'));
  } finally {
    await db1.close();
  }
  clock.advance(120_000);
  const db2 = await LevelStore.open(dir);
  try {
    const events = await EventLog.open(db2, clock.now);
    const registry = await HostRegistry.open(db2, events, { ...timeouts, restartGraceMs: 15_000 }, clock.now);
    const seen: string[] = [];
    events.subscribe((e) => seen.push(`${e.kind}:${e.host_id}:${e.new_state ?? ''}`));
    t.deepEqual(registry.listAwaitingContact(), ['hv-a', 'hv-b']);
    for (let i = 0; i < 14; i++) {
      clock.advance(1000);
      await registry.sweep();
      if (i === 5) await registry.register(hostFacts('hv-a')); // hv-a's agent is back at 6 s
      if (i > 5) await registry.heartbeat('hv-a', EMPTY_USAGE);
    }
    t.deepEqual(seen, ['EVENT_KIND_HOST_REREGISTERED:hv-a:HOST_STATE_UP'], 'no SUSPECT/DOWN during the grace');
    t.is(registry.get('hv-b').state, 'HOST_STATE_UP');
    clock.advance(1000);
    await registry.heartbeat('hv-a', EMPTY_USAGE);
    await registry.sweep();
    clock.advance(6000);
    await registry.heartbeat('hv-a', EMPTY_USAGE);
    await registry.sweep();
    t.deepEqual(seen.slice(1), ['EVENT_KIND_HOST_STATE_CHANGED:hv-b:HOST_STATE_SUSPECT', 'EVENT_KIND_HOST_STATE_CHANGED:hv-b:HOST_STATE_DOWN']);
    t.is(registry.get('hv-a').state, 'HOST_STATE_UP');
    const stored = (await db2.list<{ state: string }>('host/')).map((e) => e.value.state);
    t.deepEqual(stored, ['HOST_STATE_UP', 'HOST_STATE_DOWN'], 'verdicts are persisted');
  } finally {
    await db2.close();
  }
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

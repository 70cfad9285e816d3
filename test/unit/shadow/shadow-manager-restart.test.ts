// ShadowManager across a coordinator restart and through uncertain host liveness, with the real
// HostRegistry (its restart rule and liveness sweep) on one in-memory store and a hand-moved clock:
// a restarted coordinator whose agents have not reconnected yet (their hosts awaiting contact during
// the registry's restart grace) leaves their shadows alone and places no replacements; once a host
// is heard from it is ranked as usual, and one still silent after the grace is retired and replaced. A
// SUSPECT host keeps its shadow (it may only be late); a DOWN one does not. An entry on the host a
// switchover just made active is dropped, not retired on the host the VM runs on.
import test from 'ava';
import { silentLogger } from '../../../shared/log';
import { MemoryKvStore } from '../../fakes/memory-kv-store';
import { ManualClock } from '../../fakes/manual-clock';
import { hostFacts } from '../../fakes/host-facts';
import { EventLog } from '../../../coordinator/core/event-log';
import { HostRegistry } from '../../../coordinator/core/host-registry';
import { CapacityHeadroomRanker } from '../../../coordinator/rank/capacity-headroom-ranker';
import { ShadowManager, type ShadowManagerDeps } from '../../../coordinator/shadow/shadow-manager';
import { VmIpRegistry } from '../../../coordinator/shadow/vm-ip-registry';
import { EventSink, FakeAgents, vmConfig } from './fixtures';

const GIB = 2 ** 30;
const TIMEOUTS = { suspectAfterMs: 1500, downAfterMs: 3000 };
const GRACE_MS = 60_000;
/** b has the most room, then c: with one shadow per VM, b holds it. */
const withMemory = (id: string, gib: number) => {
  const f = hostFacts(id, { agent_endpoint: `${id}:7701` });
  return { ...f, capacity: { ...f.capacity, memory_bytes: gib * GIB } };
};
const FACTS = { a: withMemory('a', 64), b: withMemory('b', 128), c: withMemory('c', 32) };

/** One coordinator "process": its registry and shadow manager over the shared store. */
async function coordinator(store: MemoryKvStore, clock: ManualClock, agents: FakeAgents, events: EventSink, restartGraceMs: number) {
  const registry = await HostRegistry.open(store, await EventLog.open(store, clock.now), { ...TIMEOUTS, restartGraceMs }, clock.now);
  const vms = await VmIpRegistry.open(store, clock.now);
  const deps: ShadowManagerDeps = {
    store, vms, hosts: registry, ranker: new CapacityHeadroomRanker(), agents, events,
    policy: { shadowingThreshold: 0.05, maxShadowedVms: 1 }, useHostLoad: false, logger: silentLogger(), nowMs: clock.now,
  };
  const manager = await ShadowManager.open(deps);
  return { registry, vms, manager };
}

const retired = (events: EventSink) => events.events.filter((e) => e.kind === 'EVENT_KIND_SHADOW_RETIRED').map((e) => e.host_id);
const holders = (agents: FakeAgents) => [...agents.shadows].filter(([, m]) => m.has('vm1')).map(([h]) => h).sort();

test('a restarted coordinator keeps shadows on hosts not heard from yet, and retires only after the grace', async (t) => {
  const store = new MemoryKvStore();
  const clock = new ManualClock();
  const agents = new FakeAgents();
  const events = new EventSink();

  // First run: three hosts registered, vm1 active on a, its shadow on b.
  const first = await coordinator(store, clock, agents, events, GRACE_MS);
  clock.advance(500); // agents register after the coordinator started
  for (const f of Object.values(FACTS)) await first.registry.register(f);
  await first.vms.report('a', vmConfig());
  t.is((await first.manager.refresh()).placed, 1);
  t.deepEqual(first.manager.list('vm1').map((s) => s.host_id), ['b']);
  first.manager.close();

  // Killed, restarted 20 s later on the same store. The agents are backing off and reconnect late:
  // their last heartbeats are long past the DOWN timeout, but the registry gives no verdict yet.
  clock.advance(20_000);
  const second = await coordinator(store, clock, agents, events, GRACE_MS);
  t.deepEqual(second.manager.list('vm1').map((s) => s.host_id), ['b'], 'the shadow is known from the store');
  const early = await second.manager.refresh();
  clock.advance(TIMEOUTS.downAfterMs + 500);
  await second.registry.sweep();
  t.deepEqual(second.registry.listAwaitingContact(), ['a', 'b', 'c']);
  const swept = await second.manager.refresh();
  t.deepEqual([early.retired, swept.retired, early.placed, swept.placed], [0, 0, 0, 0], 'nothing retired or placed while no host was heard from');
  t.deepEqual(retired(events), []);
  t.false(agents.calls.includes('remove@b'), 'no RemoveShadow sent to b');
  t.deepEqual(holders(agents), ['b'], 'b still holds the shadow');
  t.deepEqual(second.manager.list('vm1').map((s) => s.host_id), ['b']);

  // The agents come back: b ranks first again and keeps its shadow; no churn.
  clock.advance(4000);
  for (const f of Object.values(FACTS)) await second.registry.register(f);
  const back = await second.manager.refresh();
  t.deepEqual([back.placed, back.retired], [0, 0]);
  t.deepEqual(second.manager.list('vm1').map((s) => s.host_id), ['b']);
  t.deepEqual(holders(agents), ['b']);

  // A host heard from after the restart and then silent is judged as usual: b goes DOWN for good
  // (a and c keep beating), its shadow is retired and c takes it.
  clock.advance(2000);
  await second.registry.heartbeat('a', second.registry.get('a').usage);
  await second.registry.heartbeat('c', second.registry.get('c').usage);
  clock.advance(2000);
  await second.registry.heartbeat('a', second.registry.get('a').usage);
  await second.registry.heartbeat('c', second.registry.get('c').usage);
  await second.registry.sweep();
  t.is(second.registry.get('b').state, 'HOST_STATE_DOWN');
  const gone = await second.manager.refresh();
  t.deepEqual([gone.placed, gone.retired], [1, 1]);
  t.deepEqual(second.manager.list('vm1').map((s) => s.host_id), ['c']);
  t.deepEqual(retired(events), ['b']);
  second.manager.close();
});

test('after the grace, a host never heard from since the restart and DOWN is retired and replaced', async (t) => {
  const store = new MemoryKvStore();
  const clock = new ManualClock();
  const agents = new FakeAgents();
  const events = new EventSink();
  const first = await coordinator(store, clock, agents, events, GRACE_MS);
  clock.advance(500); // agents register after the coordinator started
  for (const f of Object.values(FACTS)) await first.registry.register(f);
  await first.vms.report('a', vmConfig());
  await first.manager.refresh();
  first.manager.close();

  clock.advance(20_000);
  const second = await coordinator(store, clock, agents, events, GRACE_MS);
  // a and c reconnect; b never does (it died while the coordinator was down).
  clock.advance(1000);
  await second.registry.register(FACTS.a);
  await second.registry.register(FACTS.c);
  clock.advance(TIMEOUTS.downAfterMs);
  await second.registry.register(FACTS.a);
  await second.registry.register(FACTS.c);
  await second.registry.sweep();
  t.true(second.registry.awaitingContact('b'), 'b gets no verdict within the grace');
  const within = await second.manager.refresh();
  t.deepEqual([within.placed, within.retired], [0, 0], 'within the grace b is not yet known, and its shadow fills the one slot');
  t.deepEqual(second.manager.list('vm1').map((s) => s.host_id), ['b']);

  clock.advance(GRACE_MS);
  await second.registry.register(FACTS.a);
  await second.registry.register(FACTS.c);
  await second.registry.sweep();
  t.is(second.registry.get('b').state, 'HOST_STATE_DOWN', 'still silent after the grace: DOWN');
  const after = await second.manager.refresh();
  t.deepEqual([after.placed, after.retired], [1, 1]);
  t.deepEqual(second.manager.list('vm1').map((s) => s.host_id), ['c']);
  t.deepEqual(retired(events), ['b']);
  t.deepEqual(holders(agents), ['c']);
  second.manager.close();
});

test('after a restart, no new shadow goes to a host awaiting contact, though its stored state is UP', async (t) => {
  const store = new MemoryKvStore();
  const clock = new ManualClock();
  const agents = new FakeAgents();
  const events = new EventSink();
  const first = await coordinator(store, clock, agents, events, GRACE_MS);
  clock.advance(500);
  for (const f of Object.values(FACTS)) await first.registry.register(f);
  first.manager.close();

  clock.advance(20_000);
  const second = await coordinator(store, clock, agents, events, GRACE_MS);
  // Only a is back; a new VM on it would rank b (most room, stored UP) first.
  await second.registry.register(FACTS.a);
  await second.vms.report('a', vmConfig({ vm_id: 'vm2', mac: '52:54:00:00:00:02', address: '10.0.0.51', hostname: 'vm2' }));
  t.is(second.registry.get('b').state, 'HOST_STATE_UP');
  const waiting = await second.manager.refresh();
  t.is(waiting.placed, 0, 'b and c await contact: nothing placed on them');
  t.deepEqual(agents.calls.filter((c) => c.startsWith('put@')), []);

  await second.registry.register(FACTS.c);
  const placed = await second.manager.refresh();
  t.is(placed.placed, 1);
  t.deepEqual(second.manager.list('vm2').map((s) => s.host_id), ['c'], 'c, heard from, takes it; b still awaits contact');
  second.manager.close();
});

test('a SUSPECT host keeps its shadow and gets no replacement; DOWN, it is retired and replaced', async (t) => {
  const store = new MemoryKvStore();
  const clock = new ManualClock();
  const agents = new FakeAgents();
  const events = new EventSink();
  const c = await coordinator(store, clock, agents, events, 0);
  for (const f of Object.values(FACTS)) await c.registry.register(f);
  await c.vms.report('a', vmConfig());
  await c.manager.refresh();
  t.deepEqual(c.manager.list('vm1').map((s) => s.host_id), ['b']);

  const beat = async (...ids: string[]) => {
    for (const id of ids) await c.registry.heartbeat(id, c.registry.get(id).usage);
  };
  clock.advance(TIMEOUTS.suspectAfterMs + 200);
  await beat('a', 'c');
  await c.registry.sweep();
  t.is(c.registry.get('b').state, 'HOST_STATE_SUSPECT');
  const suspect = await c.manager.refresh();
  t.deepEqual([suspect.placed, suspect.retired], [0, 0]);
  t.deepEqual(holders(agents), ['b']);

  clock.advance(TIMEOUTS.downAfterMs);
  await beat('a', 'c');
  await c.registry.sweep();
  t.is(c.registry.get('b').state, 'HOST_STATE_DOWN');
  const down = await c.manager.refresh();
  t.deepEqual([down.placed, down.retired], [1, 1]);
  t.deepEqual(c.manager.list('vm1').map((s) => s.host_id), ['c']);
  c.manager.close();
});

test('an entry on the host the VM became active on (switchover committed, promoted() not run yet) is dropped without a RemoveShadow there', async (t) => {
  const store = new MemoryKvStore();
  const clock = new ManualClock();
  const agents = new FakeAgents();
  const events = new EventSink();
  const c = await coordinator(store, clock, agents, events, 0);
  clock.advance(500);
  for (const f of Object.values(FACTS)) await c.registry.register(f);
  await c.vms.report('a', vmConfig());
  await c.manager.refresh();
  t.deepEqual(c.manager.list('vm1').map((s) => s.host_id), ['b']);
  // The commit step moved the VM to b; a placement round runs before promoted('vm1', 'b').
  await c.vms.setActiveHost('vm1', 'b');
  const out = await c.manager.refresh();
  t.false(agents.calls.includes('remove@b'), 'no RemoveShadow to the host the VM runs on');
  t.deepEqual(retired(events), [], 'not audited as a retirement');
  t.deepEqual([out.placed, out.retired], [1, 0]);
  t.deepEqual(c.manager.list('vm1').map((s) => s.host_id), ['a'], 'the old source, now the best destination, gets the shadow');
  t.true(agents.shadows.get('b')!.has('vm1'), "b's copy of the config is untouched");
  await c.manager.promoted('vm1', 'b');
  t.deepEqual(c.manager.list('vm1').map((s) => s.host_id), ['a']);
  c.manager.close();
});

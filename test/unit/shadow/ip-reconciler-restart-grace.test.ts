// The IP reconciler after a coordinator restart, over a real HostRegistry: a VM whose hosts have
// not been heard from since the restart is neither alerted on nor repaired while the restart grace
// lasts; once a host is heard from (or the grace gives it a verdict) the sweep works as usual.
import test from 'ava';
import { silentLogger } from '../../../shared/log';
import { KeyedMutex } from '../../../shared/keyed-mutex';
import { MemoryKvStore } from '../../fakes/memory-kv-store';
import { ManualClock } from '../../fakes/manual-clock';
import { hostFacts } from '../../fakes/host-facts';
import { EventLog } from '../../../coordinator/core/event-log';
import { HostRegistry } from '../../../coordinator/core/host-registry';
import { BuiltinLeaseBackend } from '../../../coordinator/leases/builtin-lease-backend';
import { FencingCounter } from '../../../coordinator/migrate/fencing-counter';
import { IpReconciler } from '../../../coordinator/migrate/ip-reconciler';
import { VmIpRegistry } from '../../../coordinator/shadow/vm-ip-registry';
import { EventSink, FakeAgents, vmConfig } from './fixtures';

const timeouts = { suspectAfterMs: 3000, downAfterMs: 9000, restartGraceMs: 20_000 };

/** A cluster whose coordinator knew hosts a, b (b shadows vm1, active on a) and then restarted. */
async function restarted(opts: { bDownBefore?: boolean } = {}) {
  const store = new MemoryKvStore();
  const clock = new ManualClock();
  const log1 = await EventLog.open(store, clock.now);
  const reg1 = await HostRegistry.open(store, log1, timeouts, clock.now);
  await reg1.register(hostFacts('a'));
  await reg1.register(hostFacts('b'));
  if (opts.bDownBefore) {
    clock.advance(5000);
    await reg1.heartbeat('a', { cpu_load_ratio: 0, memory_used_bytes: 0, memory_available_bytes: 0 });
    clock.advance(5000);
    await reg1.heartbeat('a', { cpu_load_ratio: 0, memory_used_bytes: 0, memory_available_bytes: 0 });
    await reg1.sweep();
  }
  clock.advance(60_000); // coordinator down for a minute
  const events = await EventLog.open(store, clock.now);
  const registry = await HostRegistry.open(store, events, timeouts, clock.now);
  const vms = await VmIpRegistry.open(store);
  await vms.report('a', vmConfig());
  const agents = new FakeAgents();
  const leases = new BuiltinLeaseBackend(store);
  await leases.record(vmConfig(), 'a', ['b']);
  const audit = new EventSink();
  const reconciler = new IpReconciler({
    vms,
    hosts: { list: () => registry.list(), awaitingContact: (id) => registry.awaitingContact(id) },
    shadowHosts: () => ['b'],
    agents,
    leases,
    fencing: new FencingCounter(store),
    events: audit,
    locks: new KeyedMutex(),
    logger: silentLogger(),
  });
  return { clock, registry, agents, audit, reconciler };
}

test('during the restart grace, an address active nowhere is neither repaired nor alerted on; after contact it is repaired', async (t) => {
  const { clock, registry, agents, audit, reconciler } = await restarted();
  // The address is active nowhere (say the host's agent restarted too): tempting to "fix" at once.
  for (let i = 0; i < 5; i++) {
    clock.advance(1000);
    await registry.sweep();
    const out = await reconciler.sweep();
    t.deepEqual(out, { checked: 1, fixed: 0, alerts: 0, deferred: 1 });
  }
  t.deepEqual(agents.calls, [], 'no agent was asked or told anything');
  t.deepEqual(audit.events, []);
  await registry.register(hostFacts('a'));
  // b still awaits contact: still deferred (it may hold the address).
  t.is((await reconciler.sweep()).deferred, 1);
  await registry.register(hostFacts('b'));
  const out = await reconciler.sweep();
  t.deepEqual(out, { checked: 1, fixed: 1, alerts: 0, deferred: 0 });
  t.deepEqual(agents.holders('vm1'), ['a']);
  t.deepEqual(audit.kinds(), ['EVENT_KIND_RECONCILED']);
});

test('a host stored DOWN before the restart gives no "not up" alert during the grace, and one after it', async (t) => {
  const { clock, registry, agents, audit, reconciler } = await restarted({ bDownBefore: true });
  t.is(registry.get('b').state, 'HOST_STATE_DOWN');
  await agents.activate('a', vmConfig(), 1);
  await registry.register(hostFacts('a'));
  let out = await reconciler.sweep();
  t.is(out.deferred, 1, 'b (shadow) may still hold the address: not concluded yet');
  t.deepEqual(audit.events, []);
  // Grace over, a heartbeating, b silent: b is judged and a's check runs as usual (a holds it).
  for (let i = 0; i < 21; i++) {
    clock.advance(1000);
    await registry.heartbeat('a', { cpu_load_ratio: 0, memory_used_bytes: 0, memory_available_bytes: 0 });
    await registry.sweep();
  }
  t.false(registry.awaitingContact('b'));
  out = await reconciler.sweep();
  t.deepEqual(out, { checked: 1, fixed: 0, alerts: 0, deferred: 0 });
  t.deepEqual(agents.holders('vm1'), ['a']);
});

test('after the grace a silent active host is alerted on as not up (nothing repaired elsewhere)', async (t) => {
  const { clock, registry, agents, audit, reconciler } = await restarted();
  await registry.register(hostFacts('b'));
  for (let i = 0; i < 20; i++) {
    clock.advance(1000);
    await registry.heartbeat('b', { cpu_load_ratio: 0, memory_used_bytes: 0, memory_available_bytes: 0 });
    await registry.sweep();
    if (i < 19) t.is((await reconciler.sweep()).alerts, 0);
  }
  t.is(registry.get('a').state, 'HOST_STATE_SUSPECT');
  const out = await reconciler.sweep();
  t.deepEqual(out, { checked: 1, fixed: 0, alerts: 1, deferred: 0 });
  t.regex(audit.events[0].message, /active nowhere and its host a is not up/);
  t.deepEqual(agents.holders('vm1'), []);
});

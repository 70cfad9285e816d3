// The operator's shadowing policy reaches the shadow manager: a new max_shadowed_vms or
// shadowing_threshold changes where shadows are placed, a new shadowing_refresh_interval re-arms
// the refresh loop; a stored policy applies at start; the prediction module is the source.
import test from 'ava';
import { silentLogger } from '../../../shared/log';
import { MemoryKvStore } from '../../fakes/memory-kv-store';
import { CapacityHeadroomRanker } from '../../../coordinator/rank/capacity-headroom-ranker';
import { ShadowManager } from '../../../coordinator/shadow/shadow-manager';
import { VmIpRegistry } from '../../../coordinator/shadow/vm-ip-registry';
import {
  type LoopTimers,
  type ShadowingPolicy,
  type ShadowingPolicySource,
  ShadowRefreshLoop,
  bindShadowingPolicy,
  predictionShadowingPolicy,
} from '../../../coordinator/shadow/shadowing-policy';
import type { RunningCoordinatorModule } from '../../../coordinator/coordinator-module';
import { EventSink, FakeAgents, host, vmConfig } from './fixtures';

/** A policy source the test drives, like the prediction module behind `umbractl policy set`. */
class PolicyKnob implements ShadowingPolicySource {
  private listeners = new Set<(p: ShadowingPolicy) => void>();
  constructor(private value?: ShadowingPolicy) {}
  current() {
    return this.value;
  }
  onChange(fn: (p: ShadowingPolicy) => void) {
    this.listeners.add(fn);
    return () => void this.listeners.delete(fn);
  }
  set(p: ShadowingPolicy) {
    this.value = p;
    for (const fn of this.listeners) fn(p);
  }
}

/** Timers that record what the loop armed, so no test waits on a clock. */
class RecordingTimers implements LoopTimers {
  armed: Array<{ id: number; ms: number; fn: () => void }> = [];
  cleared: number[] = [];
  private next = 1;
  setInterval(fn: () => void, ms: number) {
    const id = this.next++;
    this.armed.push({ id, ms, fn });
    return id;
  }
  clearInterval(h: unknown) {
    this.cleared.push(h as number);
  }
  live() {
    return this.armed.filter((a) => !this.cleared.includes(a.id));
  }
}

// Headroom order from vm1's source a: b (most free), c, e, d (nearly full).
const HOSTS = [host('a'), host('b', { usedGib: 4 }), host('c', { usedGib: 16 }), host('e', { usedGib: 30 }), host('d', { usedGib: 62 })];

async function setup(initial?: ShadowingPolicy) {
  const store = new MemoryKvStore();
  const vms = await VmIpRegistry.open(store);
  const agents = new FakeAgents();
  const manager = await ShadowManager.open({
    store, vms, hosts: { list: () => HOSTS }, ranker: new CapacityHeadroomRanker(), agents, events: new EventSink(),
    policy: { shadowingThreshold: 0.05, maxShadowedVms: 1 }, logger: silentLogger(),
  });
  await vms.report('a', vmConfig());
  const timers = new RecordingTimers();
  let rounds = 0;
  const loop = new ShadowRefreshLoop(() => rounds++, 10_000, timers);
  const knob = new PolicyKnob(initial);
  let immediate = 0;
  const off = bindShadowingPolicy(knob, { manager, loop, refreshNow: () => immediate++, logger: silentLogger() });
  const hostsOf = () => manager.list('vm1').map((s) => s.host_id);
  return { manager, agents, timers, loop, knob, off, hostsOf, rounds: () => rounds, immediate: () => immediate };
}

test('raising max_shadowed_vms places more shadows at the next round; lowering it retires them', async (t) => {
  const s = await setup();
  await s.manager.refresh();
  t.deepEqual(s.hostsOf(), ['b'], 'config N = 1 before any operator policy');
  s.knob.set({ maxShadowedVms: 3, shadowingThreshold: 0.05, refreshIntervalMs: 10_000 });
  t.is(s.immediate(), 1, 'a policy change asks for a round at once');
  await s.manager.refresh();
  t.deepEqual(s.hostsOf(), ['b', 'c', 'e']);
  s.knob.set({ maxShadowedVms: 1, shadowingThreshold: 0.05, refreshIntervalMs: 10_000 });
  await s.manager.refresh();
  t.deepEqual(s.hostsOf(), ['b']);
  t.deepEqual([...(s.agents.shadows.get('c')?.keys() ?? [])], [], 'the retired shadow was removed on its host');
});

test('raising shadowing_threshold keeps only the destinations that pass it', async (t) => {
  const s = await setup({ maxShadowedVms: 4, shadowingThreshold: 0.05, refreshIntervalMs: 10_000 });
  await s.manager.refresh();
  const all = s.hostsOf();
  t.true(all.length >= 3 && all.includes('b') && all.includes('c'), all.join(','));
  const scores = new Map(s.manager.list('vm1').map((e) => [e.host_id, e.score]));
  // A threshold between the best and the second-best score leaves only the best.
  const sorted = [...scores.values()].sort((x, y) => y - x);
  const cut = (sorted[0] + sorted[1]) / 2;
  s.knob.set({ maxShadowedVms: 4, shadowingThreshold: cut, refreshIntervalMs: 10_000 });
  await s.manager.refresh();
  t.deepEqual(s.hostsOf(), ['b']);
  t.is(s.manager.policy.shadowingThreshold, cut);
});

test('a stored operator policy applies at start, before any change', async (t) => {
  const s = await setup({ maxShadowedVms: 2, shadowingThreshold: 0.05, refreshIntervalMs: 2500 });
  t.deepEqual(s.manager.policy, { maxShadowedVms: 2, shadowingThreshold: 0.05 });
  t.is(s.loop.intervalMs, 2500);
  t.deepEqual(s.timers.live().map((a) => a.ms), [2500]);
  await s.manager.refresh();
  t.deepEqual(s.hostsOf(), ['b', 'c']);
});

test('a new shadowing_refresh_interval re-arms the refresh loop; an unchanged one does not', async (t) => {
  const s = await setup();
  t.deepEqual(s.timers.live().map((a) => a.ms), [10_000]);
  s.knob.set({ maxShadowedVms: 1, shadowingThreshold: 0.05, refreshIntervalMs: 500 });
  t.deepEqual(s.timers.live().map((a) => a.ms), [500]);
  t.is(s.timers.armed.length, 2);
  s.knob.set({ maxShadowedVms: 2, shadowingThreshold: 0.05, refreshIntervalMs: 500 });
  t.is(s.timers.armed.length, 2, 'same interval: the timer is left alone');
  s.timers.live()[0].fn();
  t.is(s.rounds(), 1, 'the armed timer runs placement rounds');
  s.off();
  s.knob.set({ maxShadowedVms: 1, shadowingThreshold: 0.05, refreshIntervalMs: 60_000 });
  t.is(s.loop.intervalMs, 500, 'unsubscribed: later policies are not applied');
  s.loop.close();
  t.deepEqual(s.timers.live(), []);
});

test('the prediction module is read as the policy source through its getter and listener', (t) => {
  const listeners: Array<(p: { shadowingThreshold: number; maxShadowedVms: number; shadowingRefreshIntervalMs: number }) => void> = [];
  let stored: { shadowingThreshold: number; maxShadowedVms: number; shadowingRefreshIntervalMs: number } | undefined;
  const prediction = {
    close: async () => undefined,
    operatorPolicy: () => stored,
    onPolicySet: (fn: (typeof listeners)[number]) => {
      listeners.push(fn);
      return () => undefined;
    },
  };
  t.is(predictionShadowingPolicy(new Map()), undefined, 'no prediction module: the config applies');
  const src = predictionShadowingPolicy(new Map([['prediction', prediction as unknown as RunningCoordinatorModule]]))!;
  t.is(src.current(), undefined);
  stored = { shadowingThreshold: 0.4, maxShadowedVms: 3, shadowingRefreshIntervalMs: 700 };
  t.deepEqual(src.current(), { shadowingThreshold: 0.4, maxShadowedVms: 3, refreshIntervalMs: 700 });
  const seen: ShadowingPolicy[] = [];
  src.onChange((p) => seen.push(p));
  listeners[0]({ shadowingThreshold: 0.1, maxShadowedVms: 5, shadowingRefreshIntervalMs: 900 });
  t.deepEqual(seen, [{ shadowingThreshold: 0.1, maxShadowedVms: 5, refreshIntervalMs: 900 }]);
});

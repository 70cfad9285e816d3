// Automatic mode: a VM advised to migrate gets one MIGRATION_RECOMMENDED event and one trigger call
// per episode; nothing happens while advice is only `recommend`; trigger failures are reported.
import test from 'ava';
import { AutoMigration, type MigrationRequest, type RecommendationEvent } from '../../../coordinator/predict/auto-migration';
import { PredictionEngine } from '../../../coordinator/predict/prediction-engine';
import { PredictionHub } from '../../../coordinator/predict/prediction-hub';
import { defaultPolicy } from '../../../coordinator/predict/prediction-policy';
import { EMPTY_USAGE, type HostRecord } from '../../../shared/host-types';
import { hostFacts } from '../../fakes/host-facts';

const GIB = 2 ** 30;

function rec(id: string, threads: number): HostRecord {
  const f = hostFacts(id, { failure_domain: id });
  f.capacity.cpu_threads = threads;
  f.capacity.memory_bytes = 8 * GIB;
  return { facts: f, state: 'HOST_STATE_UP', registered_at_unix_ms: 0, last_heartbeat_unix_ms: 0, state_changed_at_unix_ms: 0, usage: EMPTY_USAGE };
}

function setup(automatic: boolean) {
  let now = 1_700_000_000_000;
  const hub = new PredictionHub({ engine: new PredictionEngine(), useHostLoad: false, now: () => now });
  const p = defaultPolicy();
  p.migration.automatic = automatic;
  hub.setPolicy(p);
  const events: RecommendationEvent[] = [];
  const triggered: MigrationRequest[] = [];
  const errors: string[] = [];
  let fail = false;
  let skip: false | 'slot' | 'cooldown' = false;
  const auto = new AutoMigration({
    hub,
    // a is full with the VM at 100% of 2 vCPUs; b has room for it.
    hosts: () => [rec('a', 2), rec('b', 4)],
    appendEvent: async (e) => void events.push(e),
    trigger: () => async (req) => {
      triggered.push(req);
      if (fail) throw new Error('switchover refused');
      return skip ? { outcome: 'SKIPPED', reason: skip, retry: skip === 'slot' } : { outcome: 'SUCCEEDED' };
    },
    onError: (m) => errors.push(m),
    now: () => now,
  });
  const feed = (cpuPercent: number) => {
    hub.ingest({ hostId: 'a', host: [], vms: [{ vmId: 'vm1', timeMs: now, cpuCores: (2 * cpuPercent) / 100, cpuPercent, vcpus: 2, memoryBytes: GIB, memoryAllocationBytes: GIB, memoryPercent: 100, dirtyRateBytesPerSec: 0 }], health: [], cost: { samples: 0, meanCpuMs: 0, maxCpuMs: 0 }, dropped: 0 });
    now += 5 * 60_000;
  };
  return { auto, events, triggered, errors, feed, setFail: (f: boolean) => (fail = f), setSkip: (v: false | 'slot' | 'cooldown') => (skip = v), advance: (ms: number) => (now += ms) };
}

test('automatic: one event and one trigger per episode, again after the advice cleared', async (t) => {
  const s = setup(true);
  for (let i = 0; i < 3; i++) s.feed(100);
  const r1 = await s.auto.round();
  t.deepEqual(r1.recommended, ['vm1']);
  t.is(s.events.length, 1);
  t.is(s.events[0].kind, 'EVENT_KIND_MIGRATION_RECOMMENDED');
  t.is(s.events[0].attributes.destination_host, 'b');
  t.regex(s.events[0].attributes.reasons, /host saturation/);
  t.deepEqual(s.triggered.map((x) => [x.vmId, x.sourceHostId, x.destinationHostId]), [['vm1', 'a', 'b']]);
  await s.auto.round();
  t.is(s.events.length, 1, 'not repeated within the episode');
  for (let i = 0; i < 3; i++) s.feed(5);
  const quiet = await s.auto.round();
  t.deepEqual(quiet.recommended, []);
  for (let i = 0; i < 3; i++) s.feed(100);
  await s.auto.round();
  t.is(s.events.length, 2, 'a new episode is recommended again');
});

test('not automatic: advice is recommend, no event, no trigger', async (t) => {
  const s = setup(false);
  for (let i = 0; i < 3; i++) s.feed(100);
  const r = await s.auto.round();
  t.is(r.evaluated, 1);
  t.deepEqual(r.recommended, []);
  t.is(s.triggered.length, 0);
});

test('a failing trigger is reported, the round goes on', async (t) => {
  const s = setup(true);
  s.setFail(true);
  for (let i = 0; i < 3; i++) s.feed(100);
  await s.auto.round();
  await new Promise((r) => setImmediate(r));
  t.is(s.triggered.length, 1);
  t.regex(s.errors.join(), /switchover refused/);
});

test('a trigger skipped for lack of a slot (retry) leaves the VM eligible: handed over again next round', async (t) => {
  const s = setup(true);
  for (let i = 0; i < 3; i++) s.feed(100);
  s.setSkip('slot');
  await s.auto.round();
  await new Promise((r) => setImmediate(r));
  t.is(s.triggered.length, 1);
  s.setSkip(false);
  s.advance(1000);
  await s.auto.round();
  await new Promise((r) => setImmediate(r));
  t.is(s.triggered.length, 2, 'the skipped VM is triggered again');
  s.advance(1000);
  await s.auto.round();
  t.is(s.triggered.length, 2, 'a started switchover ends the episode');
});

test('a trigger skipped for its cooldown or a running switchover ends the episode (no event per round)', async (t) => {
  const s = setup(true);
  for (let i = 0; i < 3; i++) s.feed(100);
  s.setSkip('cooldown');
  await s.auto.round();
  await new Promise((r) => setImmediate(r));
  s.advance(1000);
  await s.auto.round();
  t.is(s.triggered.length, 1);
  t.is(s.events.length, 1);
});

// The ranker the prediction module lends to shadow placement: the placeholder demand of a profiled
// VM is replaced by its forecast (and hosts carry their VMs' forecast peaks); an unprofiled VM is
// ranked on what the caller gave.
import test from 'ava';
import { PredictionEngine } from '../../../coordinator/predict/prediction-engine';
import { PredictionHub } from '../../../coordinator/predict/prediction-hub';
import { WindowQuantileForecaster } from '../../../coordinator/predict/window-quantile-forecaster';
import { hostViewOf, vmViewOf } from '../../../coordinator/shadow/host-views';
import { EMPTY_USAGE, type HostRecord } from '../../../shared/host-types';
import { hostFacts } from '../../fakes/host-facts';

const GIB = 2 ** 30;

function rec(id: string, threads: number): HostRecord {
  const f = hostFacts(id, { failure_domain: id });
  f.capacity.cpu_threads = threads;
  f.capacity.memory_bytes = 64 * GIB;
  return { facts: f, state: 'HOST_STATE_UP', registered_at_unix_ms: 0, last_heartbeat_unix_ms: 0, state_changed_at_unix_ms: 0, usage: EMPTY_USAGE };
}

function hubWith(vms: Array<[string, string, number, number]>) {
  let now = 1_700_000_000_000;
  const hub = new PredictionHub({ engine: new PredictionEngine(), now: () => now });
  for (let i = 0; i < 3; i++) {
    for (const [vmId, hostId, vcpus, cpuPercent] of vms) {
      hub.ingest({ hostId, host: [], vms: [{ vmId, timeMs: now, cpuCores: (vcpus * cpuPercent) / 100, cpuPercent, vcpus, memoryBytes: GIB, memoryAllocationBytes: 2 * GIB, memoryPercent: 50, dirtyRateBytesPerSec: 0 }], health: [], cost: { samples: 0, meanCpuMs: 0, maxCpuMs: 0 }, dropped: 0 });
    }
    now += 5 * 60_000;
  }
  return hub;
}

const hosts = [rec('src', 16), rec('small', 2), rec('big', 16), rec('busy', 8)];

test('a profiled VM is ranked on its forecast: a host too small for its peak is rejected', (t) => {
  // vm1: 4 vCPUs at 100% on src; "busy" already runs a VM at 6 of 8 cores.
  const hub = hubWith([['vm1', 'src', 4, 100], ['other', 'busy', 8, 75]]);
  const r = hub.forecastRanker().rank(vmViewOf('vm1', hosts[0], 'src'), hosts.map((h) => hostViewOf(h, false)), { explainRejected: true });
  t.deepEqual(r.ranked.map((d) => d.hostId), ['big']);
  t.deepEqual(Object.fromEntries(r.rejected.map((x) => [x.hostId, x.reason])), { src: 'SOURCE_HOST', small: 'CPU_CAPACITY', busy: 'CPU_CAPACITY' });
});

test('an unprofiled VM keeps the placeholder demand the caller built', (t) => {
  const hub = hubWith([]);
  const r = hub.forecastRanker().rank(vmViewOf('new', hosts[0], 'src'), hosts.map((h) => hostViewOf(h, false)));
  // The 1-core placeholder fits everywhere but the source.
  t.is(r.eligible, 3);
  t.is(r.ranked[0].hostId, 'big');
});

test("the hub's own rank (advice, best destination, RankDestinations) counts the warm shadows installed, and not after removal", (t) => {
  const twins = [rec('src', 16), rec('x', 16), rec('y', 16)];
  const hub = hubWith([['vm1', 'src', 2, 50]]);
  const plain = hub.rank('vm1', twins);
  t.is(plain.ranked[0].score, plain.ranked[1].score);
  hub.setWarmShadowHosts((vmId) => (vmId === 'vm1' ? ['y'] : []));
  const warm = hub.rank('vm1', twins);
  t.is(warm.ranked[0].hostId, 'y');
  t.regex(warm.ranked[0].reasons.join('; '), /warm shadow/);
  t.is(hub.vmPrediction('vm1', twins).advice.destinationHostId, 'y');
  hub.setWarmShadowHosts(undefined);
  t.is(hub.rank('vm1', twins).ranked[0].score, plain.ranked[0].score);
});

test('after a switchover, a batch of readings its old host took before the move does not put the VM back there', (t) => {
  let now = 1_700_000_000_000;
  const hub = new PredictionHub({ engine: new PredictionEngine(), now: () => now });
  const report = (hostId: string, timeMs: number) => ({
    hostId,
    host: [],
    vms: [{ vmId: 'vm1', timeMs, cpuCores: 1, cpuPercent: 50, vcpus: 2, memoryBytes: GIB, memoryAllocationBytes: 2 * GIB, memoryPercent: 50, dirtyRateBytesPerSec: 0 }],
    health: [],
    cost: { samples: 0, meanCpuMs: 0, maxCpuMs: 0 },
    dropped: 0,
  });
  hub.ingest(report('src', now - 1000));
  t.is(hub.vmHost('vm1'), 'src');
  hub.recordMigration('vm1', 'src', 'dst', true);
  t.is(hub.vmHost('vm1'), 'dst');
  now += 500;
  // Sent after the switchover, taken before it.
  t.like(hub.ingest(report('src', now - 800)), { accepted: 0, dropped: 1 });
  t.is(hub.vmHost('vm1'), 'dst');
  t.like(hub.ingest(report('dst', now)), { accepted: 1 });
  t.is(hub.vmHost('vm1'), 'dst');
  // A reading the old host takes after the move means the guest runs there again (e.g. moved back by hand).
  now += 1000;
  hub.ingest(report('src', now));
  t.is(hub.vmHost('vm1'), 'src');
});

test('a VM is forecast once per reading: ranking every VM reads each forecast from the cache', (t) => {
  let calls = 0;
  const engine = new PredictionEngine();
  const counting = { name: 'counting', forecast: (xs: ArrayLike<number>, steps: number) => (calls++, new WindowQuantileForecaster().forecast(xs, steps)) };
  engine.setForecaster(counting);
  let now = 1_700_000_000_000;
  const hub = new PredictionHub({ engine, now: () => now });
  const vmIds = ['v1', 'v2', 'v3', 'v4'];
  for (let i = 0; i < 3; i++) {
    vmIds.forEach((vmId, k) => hub.ingest({ hostId: hosts[k % hosts.length].facts.host_id, host: [], vms: [{ vmId, timeMs: now, cpuCores: 1, cpuPercent: 40, vcpus: 2, memoryBytes: GIB, memoryAllocationBytes: 2 * GIB, memoryPercent: 50, dirtyRateBytesPerSec: 0 }], health: [], cost: { samples: 0, meanCpuMs: 0, maxCpuMs: 0 }, dropped: 0 }));
    now += 5 * 60_000;
  }
  for (const vmId of vmIds) hub.vmPrediction(vmId, hosts);
  t.is(calls, vmIds.length, 'each VM forecast once, though each ranking read all of them');
  const first = engine.forecastVm('v1');
  t.is(engine.forecastVm('v1'), first);
  engine.recordVmSample('v1', now, 90, 50);
  t.not(engine.forecastVm('v1'), first, 'a new reading makes a new forecast');
  engine.setForecaster({ ...counting });
  const before = calls;
  engine.forecastVm('v2');
  t.is(calls, before + 1, 'another forecaster forecasts again');
});

test('an advice round builds the host views once; a reading, a policy or a VM going stale shows in the next ranking', (t) => {
  const engine = new PredictionEngine();
  let demands = 0;
  const demand = engine.demand.bind(engine);
  engine.demand = (vm) => (demands++, demand(vm));
  let now = 1_700_000_000_000;
  const hub = new PredictionHub({ engine, now: () => now, vmStaleMs: 20 * 60_000 });
  const report = (hostId: string, vmId: string, cpuPercent: number) =>
    hub.ingest({ hostId, host: [], vms: [{ vmId, timeMs: now, cpuCores: 1, cpuPercent, vcpus: 2, memoryBytes: GIB, memoryAllocationBytes: 2 * GIB, memoryPercent: 50, dirtyRateBytesPerSec: 0 }], health: [], cost: { samples: 0, meanCpuMs: 0, maxCpuMs: 0 }, dropped: 0 });
  // 8 threads: CPU, not memory, binds the headroom.
  const list = [rec('h0', 8), rec('h1', 8), rec('h2', 8)];
  const ids = list.map((h) => h.facts.host_id);
  const vmIds = Array.from({ length: 12 }, (_, k) => `v${k}`);
  for (let i = 0; i < 3; i++) {
    vmIds.forEach((vmId, k) => report(ids[k % 2], vmId, 40));
    now += 5 * 60_000;
  }
  const cpuHeadroom = (vmId: string, hostId: string) => hub.rank(vmId, list, { limit: 0, explainRejected: true }).ranked.find((d) => d.hostId === hostId)?.breakdown.headroom.value;
  demands = 0;
  for (const vmId of vmIds) hub.rank(vmId, list, { limit: 1 });
  t.is(demands, 2 * vmIds.length, 'per VM: its own demand, plus every VM once for the views (not once per VM ranked)');
  // A new reading: the views count it.
  const before = cpuHeadroom('v0', ids[1])!;
  report(ids[1], 'v1', 100);
  t.true(cpuHeadroom('v0', ids[1])! < before);
  // The odd VMs (all on the second host) stop reporting and go stale: their host frees up.
  const busy = cpuHeadroom('v0', ids[1])!;
  now += 15 * 60_000;
  vmIds.filter((_, k) => k % 2 === 0).forEach((vmId) => report(ids[0], vmId, 40));
  t.is(cpuHeadroom('v0', ids[1]), busy, 'not stale yet');
  now += 6 * 60_000;
  t.true(cpuHeadroom('v0', ids[1])! > busy, 'stale VMs no longer weigh on their host');
  // A policy: keep-apart with a VM on the third host rules it out at once.
  report(ids[2], 'v-db', 40);
  t.truthy(cpuHeadroom('v0', ids[2]));
  hub.setPolicy({ ...hub.policy, groups: [{ name: 'db', kind: 'keep-apart', vmIds: ['v0', 'v-db'] }] });
  t.is(cpuHeadroom('v0', ids[2]), undefined);
});

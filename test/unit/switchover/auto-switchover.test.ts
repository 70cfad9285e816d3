// Automatic mode's trigger: the switchover module registers it with the prediction module (a
// recommendation then switches the VM over through the migration routes); guards against storms
// (one per VM at a time, per-VM cooldown, concurrency cap); each trigger and outcome audited.
import test from 'ava';
import { EventLog } from '../../../coordinator/core/event-log';
import { migrationService } from '../../../coordinator/api/migration-service';
import type { RunningCoordinatorModule, CoordinatorModuleContext } from '../../../coordinator/coordinator-module';
import type { IpSwitchover } from '../../../coordinator/migrate/ip-switchover';
import type { SwitchoverEvent } from '../../../coordinator/migrate/switchover-event';
import type { MigrationRequest, MigrationTrigger } from '../../../coordinator/predict/auto-migration';
import type { MigrationAdvice } from '../../../coordinator/predict/migration-advisor';
import { CapacityHeadroomRanker } from '../../../coordinator/rank/capacity-headroom-ranker';
import { AutoSwitchover } from '../../../coordinator/switchover/auto-switchover';
import { MigrationRoutes } from '../../../coordinator/switchover/migration-routes';
import { switchoverCoordinatorModule } from '../../../coordinator/switchover/switchover-module';
import { EMPTY_USAGE, type HostRecord, type UmbraEvent } from '../../../shared/host-types';
import { NotFoundError } from '../../../shared/errors';
import { silentLogger } from '../../../shared/log';
import { hostFacts } from '../../fakes/host-facts';
import { MemoryKvStore } from '../../fakes/memory-kv-store';

function rec(id: string): HostRecord {
  return { facts: hostFacts(id, { failure_domain: id }), state: 'HOST_STATE_UP', registered_at_unix_ms: 0, last_heartbeat_unix_ms: 0, state_changed_at_unix_ms: 0, usage: EMPTY_USAGE };
}

function advice(vmId: string, dest: string): MigrationAdvice {
  return { vmId, probability: 0.9, reasons: ['host a saturates in 20 min'], windows: [], decision: 'migrate', benefit: 1, cost: 0.1, netBenefit: 0.9, priority: 1, destinationHostId: dest };
}

function request(vmId: string, dest: string): MigrationRequest {
  return { vmId, sourceHostId: 'a', destinationHostId: dest, advice: advice(vmId, dest) };
}

/** An IP-only world: g1 and g2 active on a, shadows current on the hosts in `ready`. */
class FakeIp {
  active = new Map([
    ['g1', 'a'],
    ['g2', 'a'],
  ]);
  ready = new Set(['b', 'c']);
  triggers: string[] = [];
  status: SwitchoverEvent['status'] = 'SUCCEEDED';
  gate?: Promise<void>;
  api = {
    activeHost: (vmId: string) => {
      const h = this.active.get(vmId);
      if (!h) throw new NotFoundError('vm', vmId);
      return h;
    },
    activeHostOf: (vmId: string) => this.active.get(vmId),
    notCurrentReason: (_vm: string, h: string) => (this.ready.has(h) ? undefined : 'no shadow there'),
    trigger: async (vmId: string, dest: string): Promise<SwitchoverEvent> => {
      this.triggers.push(`${vmId}->${dest}`);
      await this.gate;
      if (this.status === 'SUCCEEDED') this.active.set(vmId, dest);
      return { id: `sw${this.triggers.length}`, timestamp_unix_ms: 1, vm_id: vmId, source_host: 'a', destination_host: dest, status: this.status, fencing_token: 1, steps: [], total_ms: 1, error: this.status === 'SUCCEEDED' ? '' : 'activate failed' };
    },
    list: async () => [],
    nextFencingToken: async () => 1,
  } as unknown as IpSwitchover;
}

async function setup(opts: { cooldownMs?: number; maxConcurrent?: number } = {}) {
  const ip = new FakeIp();
  const routes = new MigrationRoutes(ip.api);
  const hosts = [rec('a'), rec('b'), rec('c')];
  const ranker = new CapacityHeadroomRanker();
  routes.installRanker({
    hostIds: () => hosts.map((h) => h.facts.host_id),
    rank: (vmId, source) => ranker.rank({ id: vmId, sourceHostId: source, cpuPeakCores: 1, memoryPeakBytes: 1, memorySizeBytes: 1, dirtyRateBytesPerSec: 0, cpuModel: '', requiredCpuFlags: [] }, hosts.map((h) => ({ id: h.facts.host_id, up: true, cpuCapacityCores: 16, memoryCapacityBytes: 2 ** 36, cpuPeakCores: h.facts.host_id === 'c' ? 0 : 8, memoryPeakBytes: 0, cpuModel: '', cpuFlags: [], failureDomain: h.facts.host_id, linkBandwidthBytesPerSec: 1e9 })), { explainRejected: true }),
  });
  const store = new MemoryKvStore();
  const events = await EventLog.open(store);
  let now = 1_000_000;
  const auto = new AutoSwitchover({ routes, events, logger: silentLogger(), cooldownMs: opts.cooldownMs ?? 60_000, maxConcurrent: opts.maxConcurrent ?? 1, now: () => now });
  const audit = async () => (await events.list(0, 100)).map((e: UmbraEvent) => `${e.kind === 'EVENT_KIND_MIGRATION_TRIGGERED' ? '' : e.kind + ' '}${e.vm_id} ${e.attributes.outcome}${e.attributes.destination_host ? ' ' + e.attributes.destination_host : ''}`);
  return { ip, routes, auto, audit, events, advance: (ms: number) => (now += ms) };
}

test('a recommendation switches the VM over to the recommended host; trigger and outcome audited', async (t) => {
  const s = await setup();
  const out = await s.auto.trigger(request('g1', 'b'));
  t.like(out, { outcome: 'SUCCEEDED', destinationHost: 'b', setAside: '' });
  t.deepEqual(s.ip.triggers, ['g1->b']);
  t.deepEqual(await s.audit(), ['g1 TRIGGERED', 'g1 SUCCEEDED b']);
});

test('a recommended host without a ready shadow gives way to the best ready one; the outcome says why', async (t) => {
  const s = await setup();
  s.ip.ready = new Set(['c']);
  t.like(await s.auto.trigger(request('g1', 'b')), { outcome: 'SUCCEEDED', destinationHost: 'c', setAside: 'b set aside: no shadow there' });
  t.deepEqual(s.ip.triggers, ['g1->c']);
  const outcome = (await s.events.list(0, 100)).find((e) => e.attributes.outcome === 'SUCCEEDED')!;
  t.is(outcome.message, 'automatic switchover of g1: SUCCEEDED (sw1 -> c; b set aside: no shadow there)');
  t.is(outcome.attributes.set_aside, 'b set aside: no shadow there');
});

test('no ready shadow anywhere: REFUSED with the reasons, audited, nothing switched', async (t) => {
  const s = await setup();
  s.ip.ready.clear();
  const out = await s.auto.trigger(request('g1', 'b'));
  t.is(out.outcome, 'REFUSED');
  t.regex((out as { error: string }).error, /no host holds a ready shadow/);
  t.deepEqual(s.ip.triggers, []);
  t.deepEqual(await s.audit(), ['g1 TRIGGERED', 'g1 REFUSED']);
});

test('a profiled workload the coordinator has no IP configuration of is not triggered (advice only): nothing audited', async (t) => {
  const s = await setup();
  t.like(await s.auto.trigger(request('load-1', 'b')), { outcome: 'SKIPPED', retry: false });
  t.deepEqual(s.ip.triggers, []);
  t.deepEqual(await s.audit(), []);
});

test('rolled-back outcome is recorded as such', async (t) => {
  const s = await setup();
  s.ip.status = 'ROLLED_BACK';
  t.like(await s.auto.trigger(request('g1', 'b')), { outcome: 'ROLLED_BACK' });
  t.deepEqual(await s.audit(), ['g1 TRIGGERED', 'g1 ROLLED_BACK b']);
});

test('no retrigger storm: one per VM at a time, then not again within the cooldown (whatever the outcome)', async (t) => {
  const s = await setup({ cooldownMs: 60_000, maxConcurrent: 5 });
  let open!: () => void;
  s.ip.gate = new Promise((r) => (open = r));
  const first = s.auto.trigger(request('g1', 'b'));
  await new Promise((r) => setImmediate(r));
  t.like(await s.auto.trigger(request('g1', 'b')), { outcome: 'SKIPPED' });
  open();
  await first;
  s.ip.status = 'ROLLED_BACK';
  s.advance(59_000);
  const again = await s.auto.trigger(request('g1', 'c'));
  t.is(again.outcome, 'SKIPPED');
  t.regex((again as { reason: string }).reason, /cooldown/);
  s.advance(2_000);
  t.like(await s.auto.trigger(request('g1', 'c')), { outcome: 'ROLLED_BACK' });
  t.deepEqual(s.ip.triggers, ['g1->b', 'g1->c']);
  t.deepEqual(await s.audit(), ['g1 TRIGGERED', 'g1 SUCCEEDED b', 'g1 TRIGGERED', 'g1 ROLLED_BACK c'], 'skips are not audited');
});

test('an operator switchover in flight blocks the automatic one for that VM', async (t) => {
  const s = await setup();
  let open!: () => void;
  s.ip.gate = new Promise((r) => (open = r));
  const manual = s.routes.run('g1', 'b');
  await new Promise((r) => setImmediate(r));
  t.like(await s.auto.trigger(request('g1', 'c')), { outcome: 'SKIPPED', retry: false });
  open();
  await manual;
  t.deepEqual(s.ip.triggers, ['g1->b']);
});

test('at most maxConcurrent automatic switchovers at once', async (t) => {
  const s = await setup({ maxConcurrent: 1 });
  let open!: () => void;
  s.ip.gate = new Promise((r) => (open = r));
  const first = s.auto.trigger(request('g1', 'b'));
  await new Promise((r) => setImmediate(r));
  const second = await s.auto.trigger(request('g2', 'b'));
  t.like(second, { outcome: 'SKIPPED', retry: true });
  t.regex((second as { reason: string }).reason, /at most 1/);
  open();
  await first;
  t.like(await s.auto.trigger(request('g2', 'b')), { outcome: 'SUCCEEDED' });
});

/** The real switchover module started on fakes: it must register its trigger with the prediction module. */
test('wiring: the switchover module registers the migration trigger, which switches over; close unregisters it', async (t) => {
  const ip = new FakeIp();
  const binding = migrationService({ switchover: ip.api, logger: silentLogger() });
  let registered: MigrationTrigger | undefined;
  let registrations = 0;
  let warmShadowHosts: ((vmId: string) => Iterable<string>) | undefined;
  const prediction = {
    ranker: new CapacityHeadroomRanker(),
    hub: {
      vmHost: () => undefined,
      rank: () => t.fail('the hub does not profile g1'),
      setWarmShadowHosts: (fn: typeof warmShadowHosts) => (warmShadowHosts = fn),
    },
    setMigrationTrigger: (fn: MigrationTrigger | undefined) => {
      registrations++;
      registered = fn;
    },
    close: async () => undefined,
  };
  const memory = { listMemoryShadows: async () => [], memoryShadow: () => undefined, close: async () => undefined };
  const store = new MemoryKvStore();
  const events = await EventLog.open(store);
  const hosts = [rec('a'), rec('b'), rec('c')];
  const modules = new Map<string, RunningCoordinatorModule>([
    ['prediction', prediction as unknown as RunningCoordinatorModule],
    ['ipshadow', { services: [binding], close: async () => undefined }],
    ['memory', memory as unknown as RunningCoordinatorModule],
  ]);
  const ctx = {
    store,
    dataDir: '/nonexistent',
    events,
    hosts: { list: () => hosts },
    // No agent answers: g1 is no QEMU VM here, so it takes the IP-only switchover.
    agents: { get: () => ({}) },
    logger: silentLogger(),
    modules,
  } as unknown as CoordinatorModuleContext;
  const running = await switchoverCoordinatorModule.start(
    { maxLagBytes: 1, flushTimeoutMs: 1000, deviceStateTimeoutMs: 1000, shadowVmIntervalMs: 60_000, strayShadowVmSweepMs: 60_000, recoverIntervalMs: 60_000, sourceCleanupDelayMs: 0, autoCooldownMs: 60_000, autoMaxConcurrent: 1, rankUsesHostLoad: false, chainSourceSteps: true, memoryFollowsShadows: true },
    ctx,
  );
  try {
    t.is(typeof registered, 'function', 'the switchover module registered a migration trigger');
    ip.ready = new Set(['c']);
    // g1 has no memory shadow: its warm shadows for the ranker are its current IP shadows.
    t.deepEqual([...warmShadowHosts!('g1')], ['c']);
    const out = await registered!(request('g1', 'b'));
    t.like(out, { outcome: 'SUCCEEDED', destinationHost: 'c' });
    t.deepEqual(ip.triggers, ['g1->c']);
    const audited = (await events.list(0, 100)).filter((e) => e.kind === 'EVENT_KIND_MIGRATION_TRIGGERED').map((e) => e.attributes.outcome);
    t.deepEqual(audited, ['TRIGGERED', 'SUCCEEDED']);
    // "best" through the API routes uses the ranker the module installed.
    ip.ready = new Set(['a', 'b']);
    t.is((await binding.routes.run('g1', '')).destination.hostId, 'a');
  } finally {
    await running.close();
  }
  t.is(registered, undefined, 'close unregisters the trigger');
  t.is(warmShadowHosts, undefined, 'close removes the warm-shadow lookup');
  t.is(registrations, 2);
});

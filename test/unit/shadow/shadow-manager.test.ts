// ShadowManager with fakes: placement from the capacity-headroom ranker, versions pushed to every
// shadow, a host that missed a version catches up, retirement, manual placement, persistence.
import test from 'ava';
import { silentLogger } from '../../../shared/log';
import { MemoryKvStore } from '../../fakes/memory-kv-store';
import { CapacityHeadroomRanker } from '../../../coordinator/rank/capacity-headroom-ranker';
import { PredictiveRanker } from '../../../coordinator/rank/predictive-ranker';
import { ShadowManager } from '../../../coordinator/shadow/shadow-manager';
import { VmIpRegistry } from '../../../coordinator/shadow/vm-ip-registry';
import { EventSink, FakeAgents, host, vmConfig } from './fixtures';

async function setup(hosts = [host('a'), host('b', { usedGib: 4 }), host('c', { usedGib: 16 }), host('d', { usedGib: 60 })]) {
  const store = new MemoryKvStore();
  const vms = await VmIpRegistry.open(store);
  const agents = new FakeAgents();
  const events = new EventSink();
  const list = { hosts };
  const mk = () =>
    ShadowManager.open({
      store, vms, hosts: { list: () => list.hosts }, ranker: new CapacityHeadroomRanker(), agents, events,
      policy: { shadowingThreshold: 0.05, maxShadowedVms: 2 }, logger: silentLogger(),
    });
  const manager = await mk();
  return { store, vms, agents, events, manager, list, mk };
}

const settle = () => new Promise((r) => setTimeout(r, 10));

test('shadows go to the two hosts with the most headroom, never the source, and hold the current version', async (t) => {
  const { vms, agents, manager, events } = await setup();
  await vms.report('a', vmConfig());
  const out = await manager.refresh();
  t.is(out.placed, 2);
  const list = manager.list('vm1');
  t.deepEqual(list.map((s) => s.host_id), ['b', 'c'], 'd is nearly full');
  t.true(list.every((s) => s.state === 'warm' && s.version === 1));
  t.deepEqual(agents.shadows.get('b')!.get('vm1')!.config, vmConfig());
  t.is(events.kinds().filter((k) => k === 'EVENT_KIND_SHADOW_PLACED').length, 2);
  t.is(manager.notCurrentReason('vm1', 'b'), undefined);
  t.regex(manager.notCurrentReason('vm1', 'd')!, /holds no shadow/);
});

test('a changed config gets a new version that reaches every shadow; unchanged reports do not', async (t) => {
  const { vms, agents, manager } = await setup();
  await vms.report('a', vmConfig());
  await manager.refresh();
  const same = await vms.report('a', vmConfig());
  t.true(same.accepted && !same.changed);
  await vms.report('a', vmConfig({ dns_servers: ['10.0.0.99'] }));
  await settle();
  await manager.pushAll('vm1');
  t.is(vms.get('vm1').version, 2);
  for (const h of ['b', 'c']) {
    t.is(agents.shadows.get(h)!.get('vm1')!.version, 2);
    t.deepEqual(agents.shadows.get(h)!.get('vm1')!.config.dns_servers, ['10.0.0.99']);
  }
  t.true(manager.list('vm1').every((s) => s.version === 2 && s.state === 'warm'));
});

test('a host that missed a version is behind (not current) and catches up at the next refresh', async (t) => {
  const { vms, agents, manager } = await setup();
  await vms.report('a', vmConfig());
  await manager.refresh();
  agents.down.add('c');
  await vms.report('a', vmConfig({ hostname: 'renamed' }));
  await settle();
  await manager.pushAll('vm1');
  const c = manager.list('vm1').find((s) => s.host_id === 'c')!;
  t.is(c.version, 1);
  t.is(c.state, 'staging');
  t.regex(c.last_error, /unreachable/);
  t.regex(manager.notCurrentReason('vm1', 'c')!, /holds version 1, the current version is 2/);
  agents.down.delete('c');
  const out = await manager.refresh();
  t.is(out.pushed, 1);
  t.is(manager.notCurrentReason('vm1', 'c'), undefined);
});

test('reports from a host the VM is not active on are refused', async (t) => {
  const { vms } = await setup();
  await vms.report('a', vmConfig());
  const r = await vms.report('b', vmConfig({ address: '10.0.0.77' }));
  t.false(r.accepted);
  t.is(vms.get('vm1').config.address, '10.0.0.50');
});

test('a shadow whose host fills up is retired; manual shadows stay and survive a restart', async (t) => {
  const { vms, agents, manager, list, events, mk } = await setup();
  await vms.report('a', vmConfig());
  await manager.refresh();
  await manager.place('vm1', 'd');
  t.true(manager.list('vm1').find((s) => s.host_id === 'd')!.manual);
  list.hosts = [host('a'), host('b', { usedGib: 63 }), host('c', { usedGib: 16 }), host('d', { usedGib: 60 }), host('e', { usedGib: 2 })];
  const out = await manager.refresh();
  t.is(out.retired, 1);
  t.deepEqual(manager.list('vm1').map((s) => s.host_id), ['c', 'd', 'e']);
  t.false(agents.shadows.get('b')!.has('vm1'));
  t.true(events.kinds().includes('EVENT_KIND_SHADOW_RETIRED'));
  manager.close();
  const again = await mk();
  t.deepEqual(again.list('vm1').map((s) => [s.host_id, s.manual]), [['c', false], ['d', true], ['e', false]]);
  await again.remove('vm1', 'd');
  t.deepEqual(again.list('vm1').map((s) => s.host_id), ['c', 'e']);
  await t.throwsAsync(() => again.place('vm1', 'a'), { message: /is active on 'a'/ });
  await t.throwsAsync(() => again.place('vm1', 'zz'), { message: /zz/ });
});

test('with a forecast-aware ranker, a shadow stays on its host for a slightly better one and moves for a clearly better one', async (t) => {
  const store = new MemoryKvStore();
  const vms = await VmIpRegistry.open(store);
  const agents = new FakeAgents();
  const list = { hosts: [host('a'), host('b', { usedGib: 8 }), host('c', { usedGib: 12 })] };
  const manager = await ShadowManager.open({
    store, vms, hosts: { list: () => list.hosts }, ranker: new PredictiveRanker(), agents, events: new EventSink(),
    policy: { shadowingThreshold: 0.05, maxShadowedVms: 1 }, logger: silentLogger(),
  });
  await vms.report('a', vmConfig());
  await manager.refresh();
  t.deepEqual(manager.list('vm1').map((s) => s.host_id), ['b']);
  // c now has a little more room than b: the shadow (and the memory image following it) stays.
  list.hosts = [host('a'), host('b', { usedGib: 8 }), host('c', { usedGib: 6 })];
  t.like(await manager.refresh(), { placed: 0, retired: 0 });
  t.deepEqual(manager.list('vm1').map((s) => s.host_id), ['b']);
  // b nearly full: the shadow moves.
  list.hosts = [host('a'), host('b', { usedGib: 60 }), host('c', { usedGib: 6 })];
  t.like(await manager.refresh(), { placed: 1, retired: 1 });
  t.deepEqual(manager.list('vm1').map((s) => s.host_id), ['c']);
});

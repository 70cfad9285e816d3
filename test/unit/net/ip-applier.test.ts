// IpApplier over in-memory tables: the three modes, idempotency, ordering, fencing, bursts, failures.
import test from 'ava';
import { FencingGuard } from '../../../agent/net/fencing-guard';
import { parseIpActivationSpec, type IpActivationSpec } from '../../../agent/net/ip-activation-spec';
import { IpApplier } from '../../../agent/net/ip-applier';
import { StaleFencingTokenError } from '../../../agent/net/net-errors';
import { MemoryKvStore } from './fakes/memory-kv-store';
import { MemoryNetTables } from './fakes/memory-net-tables';
import { RecordingAnnouncer } from './fakes/recording-announcer';
import type { AddressSpec, LinkDetails } from '../../../agent/net/ports';

const HOST_MAC = '02:00:00:00:00:0a';
const VM_MAC = '52:54:00:00:00:01';

function setup(options: { fencing?: boolean; announceCount?: number } = {}) {
  const tables = new MemoryNetTables();
  tables.addLink('eth0', HOST_MAC);
  tables.addLink('br0', '02:00:00:00:00:0b');
  tables.addLink('tap0', '02:00:00:00:00:0c');
  const announcer = new RecordingAnnouncer();
  const kv = new MemoryKvStore();
  const applier = new IpApplier(tables, announcer, {
    announceCount: options.announceCount ?? 3,
    announceIntervalMs: 20,
    ...(options.fencing ? { fencing: new FencingGuard(kv) } : {}),
  });
  return { tables, announcer, applier, kv };
}

const specs: Record<string, IpActivationSpec> = {
  routed: parseIpActivationSpec({ vmId: 'vm1', mode: 'routed', address: '10.0.0.5', prefixLength: 24, interface: 'eth0', tap: 'tap0' }),
  bridged: parseIpActivationSpec({ vmId: 'vm1', mode: 'bridged', address: '10.0.0.5', prefixLength: 24, interface: 'br0', tap: 'tap0', mac: VM_MAC, vlan: 10 }),
  address: parseIpActivationSpec({ vmId: 'vm1', mode: 'address', address: '10.0.0.100', prefixLength: 24, interface: 'eth0' }),
};

const expectedActive: Record<string, Record<string, string[]>> = {
  routed: { addresses: [], routes: ['10.0.0.5>tap0'], proxies: ['eth0|10.0.0.5'], permanent: [], fdb: [] },
  bridged: { addresses: [], routes: [], proxies: [], permanent: [`br0|10.0.0.5>${VM_MAC}`], fdb: [`tap0|${VM_MAC}|10`] },
  address: { addresses: ['eth0|10.0.0.100/24'], routes: [], proxies: [], permanent: [], fdb: [] },
};
const empty = { addresses: [], routes: [], proxies: [], permanent: [], fdb: [] };

for (const mode of ['routed', 'bridged', 'address'] as const) {
  test(`${mode}: activate applies the mode's state and announces; again is a no-op; deactivate removes it`, async (t) => {
    const { tables, announcer, applier } = setup();
    const first = await applier.activate(specs[mode]);
    t.deepEqual(tables.snapshot(), expectedActive[mode]);
    t.true(first.changed);
    t.is(first.action, 'activate');
    t.true(first.steps.every((s) => s.durationMs >= 0));
    t.true(first.steps.some((s) => s.step === 'announce'));
    const a = announcer.bursts[0].announcement;
    t.is(a.address, specs[mode].address);
    t.is(a.interface, specs[mode].interface);
    // Bridged announces the VM's own MAC; routed and address announce the host interface's.
    t.is(a.mac, mode === 'bridged' ? VM_MAC : HOST_MAC);
    t.is(a.count, 3);
    t.is(a.intervalMs, 20);

    const second = await applier.activate(specs[mode]);
    t.false(second.changed);
    t.deepEqual(tables.snapshot(), expectedActive[mode]);

    const off = await applier.deactivate(specs[mode]);
    t.true(off.changed);
    t.deepEqual(tables.snapshot(), empty);
    const offAgain = await applier.deactivate(specs[mode]);
    t.false(offAgain.changed);
    t.deepEqual(tables.snapshot(), empty);
  });
}

test('deactivating a config that was never active succeeds without changes', async (t) => {
  const { tables, applier } = setup();
  const r = await applier.deactivate(specs.routed);
  t.false(r.changed);
  t.deepEqual(tables.snapshot(), empty);
});

test('routed deactivation withdraws the proxy entry before the route', async (t) => {
  const { tables, applier } = setup();
  await applier.activate(specs.routed);
  tables.calls.length = 0;
  await applier.deactivate(specs.routed);
  t.deepEqual(tables.calls, ['neighbors.removeProxy', 'routes.removeHostRoute']);
});

test('deactivate cancels a burst still running for the VM', async (t) => {
  const { announcer, applier } = setup();
  const r = await applier.activate(specs.address);
  t.false(announcer.bursts[0].cancelled);
  await applier.deactivate(specs.address);
  t.true(announcer.bursts[0].cancelled);
  t.is(await r.announcement, 1);
});

test('announceCount 0 applies state without announcing', async (t) => {
  const { announcer, applier, tables } = setup({ announceCount: 0 });
  const r = await applier.activate(specs.address);
  t.is(announcer.bursts.length, 0);
  t.is(r.announcement, undefined);
  t.deepEqual(tables.snapshot(), expectedActive.address);
});

test('a kernel refusal surfaces as the typed error and leaves earlier steps applied for a retry', async (t) => {
  const { tables, applier } = setup();
  tables.failNext.add('neighbors.ensureProxy');
  const err = await t.throwsAsync(applier.activate(specs.routed));
  t.is(err?.name, 'NetlinkRequestError');
  t.is((err as { reason?: string }).reason, 'PERMISSION_DENIED');
  t.deepEqual(tables.snapshot().routes, ['10.0.0.5>tap0']);
  await applier.activate(specs.routed);
  t.deepEqual(tables.snapshot(), expectedActive.routed);
});

test('a failed first announcement frame fails the activation', async (t) => {
  const { announcer, applier } = setup();
  announcer.failNext = new Error('no pcap');
  await t.throwsAsync(applier.activate(specs.address), { message: 'no pcap' });
});

test('a missing tap fails with NOT_FOUND naming the interface', async (t) => {
  const { applier } = setup();
  const spec = { ...specs.routed, tap: 'tap9' };
  const err = await t.throwsAsync(applier.activate(spec));
  t.is((err as { reason?: string }).reason, 'NOT_FOUND');
  t.regex(err!.message, /tap9/);
});

test('with fencing: a token is required, older tokens are refused naming both, equal tokens re-apply', async (t) => {
  const { applier, tables } = setup({ fencing: true });
  await t.throwsAsync(applier.activate(specs.address), { message: /fencing_token/ });
  const r = await applier.activate(specs.address, { fencingToken: 7 });
  t.is(r.fencing?.token, 7);
  t.false(r.fencing?.reapplied);
  const again = await applier.activate(specs.address, { fencingToken: 7 });
  t.true(again.fencing?.reapplied);
  const err = await t.throwsAsync(applier.deactivate(specs.address, { fencingToken: 6 }), { instanceOf: StaleFencingTokenError });
  t.is((err as StaleFencingTokenError).reason, 'FAILED_PRECONDITION');
  t.regex(err!.message, /6.*7/);
  t.deepEqual(tables.snapshot(), expectedActive.address, 'the refused deactivation changed nothing');
  await applier.deactivate(specs.address, { fencingToken: 8 });
  t.deepEqual(tables.snapshot(), empty);
});

test('concurrent commands for one VM run one after the other', async (t) => {
  const { applier, tables } = setup();
  const results = await Promise.all([applier.activate(specs.address), applier.deactivate(specs.address), applier.activate(specs.address)]);
  t.deepEqual(results.map((r) => r.action), ['activate', 'deactivate', 'activate']);
  t.deepEqual(tables.snapshot(), expectedActive.address);
});

test('prepare readies the announcer on the interface; close cancels bursts and closes it', async (t) => {
  const { applier, announcer } = setup();
  applier.prepare(specs.address);
  t.deepEqual(announcer.prepared, ['eth0']);
  await applier.activate(specs.address);
  await applier.close();
  t.true(announcer.bursts[0].cancelled);
  t.true(announcer.closed);
});

test('admit records the token ahead of the switch, so the activation with it writes nothing and changes only the kernel', async (t) => {
  const { applier, tables, kv, announcer } = setup({ fencing: true });
  await t.throwsAsync(applier.admit(specs.address), { message: /fencing_token/ });
  const admitted = await applier.admit(specs.address, { fencingToken: 11 });
  t.is(admitted.fencing?.token, 11);
  t.false(admitted.fencing?.reapplied);
  t.deepEqual(tables.snapshot(), empty, 'admit changes no kernel state');
  t.deepEqual(announcer.prepared, ['eth0']);
  t.deepEqual(tables.calls, ['addresses.rehearseEnsure', 'addresses.rehearseRemove'], 'the add and the delete were rehearsed, nothing else ran');
  tables.calls.length = 0;
  await applier.admit(specs.routed, { fencingToken: 11 });
  t.deepEqual(tables.calls, [], 'only address mode rehearses its change');
  const puts = kv.puts;
  const r = await applier.activate(specs.address, { fencingToken: 11 });
  t.true(r.fencing?.reapplied);
  t.is(kv.puts, puts, 'no store write during the activation');
  t.deepEqual(tables.snapshot(), expectedActive.address);
  await t.throwsAsync(applier.admit(specs.address, { fencingToken: 10 }), { instanceOf: StaleFencingTokenError });
});

test('after admit, the activation uses the interface admit resolved (no lookup); a failed activation drops it', async (t) => {
  const { applier, tables } = setup({ fencing: true });
  let lookups = 0;
  const resolve = tables.links.resolve.bind(tables.links);
  tables.links.resolve = async (name: string) => {
    lookups++;
    return resolve(name);
  };
  await applier.admit(specs.address, { fencingToken: 3 });
  t.is(lookups, 1);
  const r = await applier.activate(specs.address, { fencingToken: 3 });
  t.is(lookups, 1, 'neither the address nor the announcement looked the interface up again');
  t.deepEqual(tables.snapshot(), expectedActive.address);
  t.true(r.steps.some((s) => s.step === 'announce'));
  await applier.deactivate(specs.address, { fencingToken: 3 });

  await t.throwsAsync(applier.admit({ ...specs.address, interface: 'eth9' }, { fencingToken: 3 }), { message: /eth9/ });
});

test('after admit, the removal goes through the interface admit resolved, and looks it up again when that finds nothing', async (t) => {
  const { applier, tables } = setup({ fencing: true });
  const remove = tables.addresses.remove.bind(tables.addresses);
  const calls: Array<LinkDetails | undefined> = [];
  let staleLink = false;
  tables.addresses.remove = async (s: AddressSpec, link?: LinkDetails) => {
    calls.push(link);
    // An index that belongs to another interface now: the kernel finds no such address there.
    if (link && staleLink) return false;
    return remove(s);
  };
  await applier.admit(specs.address, { fencingToken: 3 });
  await applier.activate(specs.address, { fencingToken: 3 });
  const r = await applier.deactivate(specs.address, { fencingToken: 3 });
  t.deepEqual(calls.map((l) => l?.name), ['eth0']);
  t.true(r.changed);
  t.deepEqual(tables.snapshot(), empty);

  await applier.admit(specs.address, { fencingToken: 4 });
  await applier.activate(specs.address, { fencingToken: 4 });
  staleLink = true;
  calls.length = 0;
  const again = await applier.deactivate(specs.address, { fencingToken: 4 });
  t.deepEqual(calls.map((l) => l?.name), ['eth0', undefined], 'tried through the admitted link, then with a lookup');
  t.true(again.changed);
  t.deepEqual(tables.snapshot(), empty, 'the address is gone all the same');
});

for (const mode of ['routed', 'bridged'] as const) {
  test(`${mode}: after admit, every table change goes through the interface and tap admit resolved; a removal that finds nothing that way is tried again with lookups`, async (t) => {
    const { applier, tables } = setup({ fencing: true });
    const seen: string[] = [];
    let staleLinks = false;
    // Each change records the link it was handed; with staleLinks, removals through one find nothing.
    const spy = <S>(name: string, fn: (s: S, l?: LinkDetails) => Promise<boolean>) => async (s: S, l?: LinkDetails) => {
      seen.push(`${name}:${l?.name ?? '-'}`);
      return name.includes('remove') && l && staleLinks ? false : fn(s);
    };
    tables.routes.ensureHostRoute = spy('route.ensure', tables.routes.ensureHostRoute.bind(tables.routes));
    tables.routes.removeHostRoute = spy('route.remove', tables.routes.removeHostRoute.bind(tables.routes));
    tables.neighbors.ensureProxy = spy('proxy.ensure', tables.neighbors.ensureProxy.bind(tables.neighbors));
    tables.neighbors.removeProxy = spy('proxy.remove', tables.neighbors.removeProxy.bind(tables.neighbors));
    tables.neighbors.ensurePermanent = spy('neighbor.ensure', tables.neighbors.ensurePermanent.bind(tables.neighbors));
    tables.neighbors.removePermanent = spy('neighbor.remove', tables.neighbors.removePermanent.bind(tables.neighbors));
    tables.fdb.ensure = spy('fdb.ensure', tables.fdb.ensure.bind(tables.fdb));
    tables.fdb.remove = spy('fdb.remove', tables.fdb.remove.bind(tables.fdb));
    const iface = specs[mode].interface;
    await applier.admit(specs[mode], { fencingToken: 1 });
    await applier.activate(specs[mode], { fencingToken: 1 });
    await applier.deactivate(specs[mode], { fencingToken: 1 });
    t.deepEqual(
      seen,
      mode === 'routed'
        ? ['route.ensure:tap0', `proxy.ensure:${iface}`, `proxy.remove:${iface}`, 'route.remove:tap0']
        : ['fdb.ensure:tap0', `neighbor.ensure:${iface}`, `neighbor.remove:${iface}`, 'fdb.remove:tap0'],
    );
    t.deepEqual(tables.snapshot(), empty);

    await applier.admit(specs[mode], { fencingToken: 2 });
    await applier.activate(specs[mode], { fencingToken: 2 });
    seen.length = 0;
    staleLinks = true;
    await applier.deactivate(specs[mode], { fencingToken: 2 });
    t.deepEqual(
      seen,
      mode === 'routed'
        ? [`proxy.remove:${iface}`, 'proxy.remove:-', 'route.remove:tap0', 'route.remove:-']
        : [`neighbor.remove:${iface}`, 'neighbor.remove:-', 'fdb.remove:tap0', 'fdb.remove:-'],
    );
    t.deepEqual(tables.snapshot(), empty, 'removed all the same');
  });
}

test('admit of a VM whose tap is gone (a source whose guest died) still admits; its removal has nothing to do', async (t) => {
  const { applier, tables } = setup({ fencing: true });
  tables.linkMap.delete('tap0');
  await applier.admit(specs.bridged, { fencingToken: 1 });
  const r = await applier.deactivate(specs.bridged, { fencingToken: 1 });
  t.false(r.changed);
});

// Agent side: VmIpConfig parsing and lease conversion, and the durable shadow store (newest
// coordinator version wins, sniffed lease fields refresh the record, restart keeps everything).
import test from 'ava';
import { MemoryKvStore } from '../../fakes/memory-kv-store';
import { ShadowStore } from '../../../agent/ipshadow/shadow-store';
import { activationSpecFor } from '../../../agent/ipshadow/activation-spec-builder';
import { parseVmIpConfig, configToWire } from '../../../shared/vm-ip-config';
import { configFromLease, prefixFromMask } from '../../../agent/ipshadow/config-from-lease';
import type { DhcpLease } from '../../../agent/dhcp/dhcp-lease-table';
import { vmConfig } from './fixtures';

test('prefixFromMask accepts contiguous masks only', (t) => {
  t.is(prefixFromMask('255.255.255.0'), 24);
  t.is(prefixFromMask('255.255.255.255'), 32);
  t.is(prefixFromMask('255.255.240.0'), 20);
  t.is(prefixFromMask('0.0.0.0'), 0);
  t.is(prefixFromMask('255.0.255.0'), undefined);
  t.is(prefixFromMask('nonsense'), undefined);
});

test('parseVmIpConfig round-trips the wire form and names the bad field', (t) => {
  t.deepEqual(parseVmIpConfig(configToWire(vmConfig())), vmConfig());
  t.throws(() => parseVmIpConfig({ ...configToWire(vmConfig()), mac: 'zz' }), { message: /^config\.mac: / });
  t.throws(() => parseVmIpConfig({ ...configToWire(vmConfig()), address: '10.0.0.500' }), { message: /^config\.address: / });
  t.throws(() => parseVmIpConfig({ ...configToWire(vmConfig()), prefix_length: 40 }), { message: /^config\.prefix_length: / });
  t.throws(() => parseVmIpConfig({ ...configToWire(vmConfig()), mode: 'tunnel' }), { message: /^config\.mode: / });
  t.throws(() => parseVmIpConfig({ ...configToWire(vmConfig()), dns_servers: ['x'] }), { message: /^config\.dns_servers\[0\]: / });
});

test('configFromLease takes the prefix from the mask and the first router', (t) => {
  const lease: DhcpLease = {
    mac: '52:54:00:00:00:01', state: 'bound', address: '10.1.2.3', subnetMask: '255.255.0.0', routers: ['10.1.0.1', '10.1.0.2'], dnsServers: ['10.1.0.53'],
    domainName: 'x', hostname: 'h', leaseTimeSec: 600, renewalTimeSec: 300, rebindingTimeSec: 525, serverId: '10.1.0.1', leaseStartMs: 5, expiresAtMs: 605, lastSeenMs: 5, version: 3,
  };
  const c = configFromLease('vm9', 'routed', lease);
  t.like(c, { vm_id: 'vm9', address: '10.1.2.3', prefix_length: 16, gateway: '10.1.0.1', mode: 'routed', expires_at_unix_ms: 605, lease_state: 'bound' });
});

test('the activation spec takes the address from the config and mode/interface/tap from this host', (t) => {
  const agent = { vms: [{ id: 'vm1', mac: '52:54:00:00:00:01', mode: 'routed' as const, tap: 'tap1' }], defaultMode: 'address' as const, defaultInterface: 'br0' };
  t.like(activationSpecFor(vmConfig(), agent), { mode: 'routed', tap: 'tap1', interface: 'br0', address: '10.0.0.50', prefixLength: 24 });
  t.like(activationSpecFor(vmConfig({ vm_id: 'other' }), agent), { mode: 'address', interface: 'br0' });
  t.throws(() => activationSpecFor(vmConfig({ vm_id: 'other', mode: 'bridged' }), agent), { message: /^tap: / });
});

test('the newest coordinator version wins; sniffed lease fields update without a version; restart keeps it', async (t) => {
  const kv = new MemoryKvStore();
  let now = 100;
  const s = await ShadowStore.open(kv, () => now);
  t.true((await s.put('a', vmConfig(), 2)).applied);
  const older = await s.put('a', vmConfig({ hostname: 'old' }), 1);
  t.false(older.applied);
  t.is(older.record.config.hostname, 'vm1');
  now = 200;
  const { vm_id: _v, mode: _m, ...lease } = vmConfig({ dns_servers: ['10.0.0.77'], lease_start_unix_ms: 150 });
  const [sniffed] = await s.applySniffed('52:54:00:00:00:01', lease);
  t.deepEqual(sniffed.config.dns_servers, ['10.0.0.77']);
  t.is(sniffed.version, 2);
  t.is(sniffed.sniffed_at_unix_ms, 200);
  t.deepEqual(await s.applySniffed('52:54:00:00:00:99', lease), []);
  await s.setActive('vm1', true);
  const again = await ShadowStore.open(kv);
  t.like(again.get('vm1'), { version: 2, active: true, sniffed_at_unix_ms: 200 });
  t.deepEqual(again.get('vm1')!.config.dns_servers, ['10.0.0.77']);
  t.true((await again.put('a', vmConfig(), 2)).applied, 'same version from the coordinator overrides the sniffed view');
  t.deepEqual(again.get('vm1')!.config.dns_servers, ['10.0.0.53']);
  t.true(await again.remove('vm1'));
  t.false(await again.remove('vm1'));
});

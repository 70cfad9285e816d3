// The `kea` LeaseBackend against a real kea-dhcp4 (memfile leases, UNIX control socket, lease_cmds
// hook): a guest gets a lease from Kea with udhcpc, then Umbra records shadow hosts and, after a
// switchover, the new host in that lease's user-context; an address Kea never leased is added.
import test from 'ava';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { NetnsLab, isRoot, waitFor } from '../../helpers/netns';
import { REPO_ROOT } from '../../helpers/umbra-cluster';
import { KeaLeaseBackend } from '../../../coordinator/leases/kea-lease-backend';
import { KeaControlClient } from '../../../coordinator/leases/kea-control-client';
import type { VmIpConfig } from '../../../shared/vm-ip-config';

const LEASE_CMDS = '/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_lease_cmds.so';
const GUEST_MAC = '52:54:00:80:00:01';
const UDHCPC_SCRIPT = path.join(REPO_ROOT, 'test', 'os', 'ipshadow', 'udhcpc-record.sh');

const tmp = mkdtempSync(path.join(tmpdir(), 'umbra-kea-os-'));
const lab = new NetnsLab('kea');

test.after.always(async () => {
  await lab.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

function config(address: string, mac: string): VmIpConfig {
  return {
    vm_id: 'vm-kea', mac, address, prefix_length: 24, gateway: '10.80.0.1', dns_servers: [], domain_name: '', hostname: 'vmkea', lease_time_sec: 900,
    renewal_time_sec: 450, rebinding_time_sec: 787, server_id: '10.80.0.1', lease_start_unix_ms: 0, expires_at_unix_ms: 0, vlan_id: 0, mode: '', lease_state: 'bound',
  };
}

test('the kea backend records shadow hosts and the new host in a real kea-dhcp4 lease', async (t) => {
  if (!isRoot() || !existsSync(LEASE_CMDS)) {
    t.log(`skipped: needs root (namespaces) and ${LEASE_CMDS}`);
    t.pass();
    return;
  }
  await lab.start();
  const srv = await lab.addHost('srv');
  const guest = await lab.addHost('gst');
  await lab.link(srv, { bridge: 'vmnet', ifname: 'eth0', address: '10.80.0.1/24' });
  await lab.link(guest, { bridge: 'vmnet', ifname: 'eth0', mac: GUEST_MAC });
  const socket = path.join(tmp, 'kea4.sock');
  const leaseFile = path.join(tmp, 'kea-leases4.csv');
  const conf = path.join(tmp, 'kea-dhcp4.conf');
  writeFileSync(conf, JSON.stringify({
    Dhcp4: {
      'interfaces-config': { interfaces: ['eth0'] },
      'control-socket': { 'socket-type': 'unix', 'socket-name': socket },
      'lease-database': { type: 'memfile', name: leaseFile, persist: true, 'lfc-interval': 0 },
      'hooks-libraries': [{ library: LEASE_CMDS }],
      'valid-lifetime': 900,
      subnet4: [{ id: 1, subnet: '10.80.0.0/24', pools: [{ pool: '10.80.0.50 - 10.80.0.150' }], 'option-data': [{ name: 'routers', data: '10.80.0.1' }] }],
      loggers: [{ name: 'kea-dhcp4', output_options: [{ output: 'stdout' }], severity: 'WARN' }],
    },
  }));
  const kea = lab.spawn(srv, 'kea-dhcp4', ['-c', conf], { env: { ...process.env, KEA_LOCKFILE_DIR: tmp, KEA_PIDFILE_DIR: tmp } });
  let keaOut = '';
  kea.stdout!.on('data', (d) => (keaOut += d));
  kea.stderr!.on('data', (d) => (keaOut += d));
  const client = new KeaControlClient(socket);
  await waitFor('kea control socket', async () => existsSync(socket) && client.command('version-get').then(() => true, () => false), 20000).catch((err) => {
    t.log(keaOut);
    throw err;
  });

  lab.spawn(guest, 'udhcpc', ['-f', '-i', 'eth0', '-s', UDHCPC_SCRIPT, '-x', 'hostname:vmkea', '-t', '10', '-T', '1', '-A', '2'], {
    env: { ...process.env, UDHCPC_LOG: path.join(tmp, 'udhcpc.log') },
  });
  const leased = await waitFor('a lease from kea', async () => {
    const m = /bound (\d+\.\d+\.\d+\.\d+)/.exec(existsSync(path.join(tmp, 'udhcpc.log')) ? readFileSync(path.join(tmp, 'udhcpc.log'), 'utf8') : '');
    return m?.[1];
  }, 30000).catch((err) => {
    t.log(keaOut);
    throw err;
  });
  const granted = (await client.command('lease4-get', { 'ip-address': leased })).arguments!;
  t.is(granted['hw-address'], GUEST_MAC);

  const backend = new KeaLeaseBackend({ controlSocket: socket, subnetId: 0 });
  t.is(await backend.get(config(leased, GUEST_MAC)), undefined, 'no umbra context before');
  await backend.record(config(leased, GUEST_MAC), 'hv-a', ['hv-c', 'hv-b']);
  t.like(await backend.get(config(leased, GUEST_MAC)), { vm_id: 'vm-kea', active_host: 'hv-a', shadow_hosts: ['hv-b', 'hv-c'], mac: GUEST_MAC });
  // The switchover: the lease now names the new host; what Kea granted is kept.
  await backend.record(config(leased, GUEST_MAC), 'hv-b', ['hv-a']);
  const after = (await client.command('lease4-get', { 'ip-address': leased })).arguments!;
  t.like(after['user-context'] as object, { umbra: { active_host: 'hv-b', shadow_hosts: ['hv-a'], vm_id: 'vm-kea' } });
  t.is(after['valid-lft'], granted['valid-lft']);
  t.is(after['hw-address'], GUEST_MAC);
  t.is(after['subnet-id'], 1);
  await waitFor('the lease file to carry the context', async () => readFileSync(leaseFile, 'utf8').includes('hv-b'), 5000);

  // An address Kea never leased (an operator-given config) is added.
  const added = config('10.80.0.200', '52:54:00:80:00:02');
  await backend.record(added, 'hv-c', []);
  const l = (await client.command('lease4-get', { 'ip-address': '10.80.0.200' })).arguments!;
  t.is(l['hw-address'], '52:54:00:80:00:02');
  t.is(l['valid-lft'], 900);
  t.like(await backend.get(added), { active_host: 'hv-c' });
  await t.throwsAsync(() => client.command('lease4-get', { 'ip-address': 'not-an-ip' }), { message: /kea lease4-get failed/ });
});

// IP activation against the real kernel in lab namespaces: each mode applied and withdrawn as seen
// by `ip -j` / `bridge -j`, idempotency, fencing (also across a restart), and announcement bursts
// seen by tcpdump in a neighbour namespace and taken into its neighbour cache.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRoot, NetnsLab, waitFor } from '../../helpers/netns';
import { NetRunner, type RunnerCallError } from './netns-net-runner-client';

const ROOT = isRoot();
const lab = new NetnsLab('net');
const dataDir = mkdtempSync(join(tmpdir(), 'umbra-net-os-'));
let hostA = '';
let hostC = '';
let nbr = '';
let runnerA: NetRunner | undefined;
let runnerC: NetRunner | undefined;
let macA = '';
const runners: NetRunner[] = [];

const NBR_MAC_STALE = '02:00:00:00:00:99';
const VM_MAC = '52:54:00:00:77:01';

const addressSpec = { vmId: 'vm-addr', mode: 'address', address: '10.77.0.100', prefixLength: 24, interface: 'eth0' };
const address6Spec = { vmId: 'vm-addr6', mode: 'address', address: 'fd77::100', prefixLength: 64, interface: 'eth0' };
const routedSpec = { vmId: 'vm-routed', mode: 'routed', address: '10.77.1.5', prefixLength: 32, interface: 'eth0', tap: 'tapr' };
const bridgedSpec = { vmId: 'vm-br', mode: 'bridged', address: '10.77.0.50', prefixLength: 24, interface: 'br0', tap: 'tapb', mac: VM_MAC };

async function ipJson<T = Array<Record<string, unknown>>>(ns: string, args: string[], tool = 'ip'): Promise<T> {
  const out = await lab.exec(ns, tool, ['-j', ...args]);
  return JSON.parse(out.trim() || '[]') as T;
}

async function addressesOn(ns: string, dev: string): Promise<string[]> {
  const links = await ipJson<Array<{ addr_info: Array<{ local: string; prefixlen: number }> }>>(ns, ['addr', 'show', 'dev', dev]);
  return links.flatMap((l) => l.addr_info.map((a) => `${a.local}/${a.prefixlen}`));
}

async function neighMac(ns: string, address: string): Promise<string | undefined> {
  const n = await ipJson<Array<{ dst: string; lladdr?: string }>>(ns, ['neigh', 'show', address, 'dev', 'eth0']);
  return n.find((e) => e.dst === address)?.lladdr;
}

test.before(async () => {
  if (!ROOT) return;
  await lab.start();
  hostA = await lab.addHost('a');
  hostC = await lab.addHost('c');
  nbr = await lab.addHost('n');
  await lab.link(hostA, { bridge: 'vmnet', ifname: 'eth0', address: '10.77.0.2/24' });
  await lab.link(nbr, { bridge: 'vmnet', ifname: 'eth0', address: '10.77.0.9/24' });
  await lab.exec(nbr, 'ip', ['-6', 'addr', 'add', 'fd77::9/64', 'dev', 'eth0', 'nodad']);
  // Routed mode needs forwarding (proxy ARP answers only for forwarded destinations) and a tap.
  await lab.exec(hostA, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  // Without this the kernel delays proxy answers to broadcast requests by up to 0.8 s.
  await lab.exec(hostA, 'sysctl', ['-qw', 'net.ipv4.neigh.eth0.proxy_delay=0']);
  await lab.exec(hostA, 'ip', ['tuntap', 'add', 'dev', 'tapr', 'mode', 'tap']);
  await lab.exec(hostA, 'ip', ['link', 'set', 'tapr', 'up']);
  // Host C bridges its uplink and the VM's tap, as a bridged-mode hypervisor does.
  await lab.link(hostC, { bridge: 'vmnet', ifname: 'eth0' });
  await lab.exec(hostC, 'ip', ['link', 'add', 'br0', 'type', 'bridge']);
  await lab.exec(hostC, 'ip', ['link', 'set', 'br0', 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0']);
  await lab.exec(hostC, 'ip', ['link', 'set', 'eth0', 'master', 'br0']);
  await lab.exec(hostC, 'ip', ['tuntap', 'add', 'dev', 'tapb', 'mode', 'tap']);
  await lab.exec(hostC, 'ip', ['link', 'set', 'tapb', 'master', 'br0']);
  await lab.exec(hostC, 'ip', ['link', 'set', 'tapb', 'up']);
  await lab.exec(hostC, 'ip', ['link', 'set', 'br0', 'up']);
  macA = (await ipJson<Array<{ address: string }>>(hostA, ['link', 'show', 'eth0']))[0].address;
  runnerA = NetRunner.start(lab, hostA, { fencingDir: join(dataDir, 'a'), announceCount: 3, announceIntervalMs: 20 });
  runnerC = NetRunner.start(lab, hostC, { fencingDir: join(dataDir, 'c'), announceCount: 3, announceIntervalMs: 20 });
  runners.push(runnerA, runnerC);
});

test.after.always(async () => {
  for (const r of runners) await r.close().catch(() => undefined);
  await lab.cleanup();
  rmSync(dataDir, { recursive: true, force: true });
});

const rootTest = ROOT ? test.serial : test.skip;
if (!ROOT) test('os/net tests need root (network namespaces, netlink writes, pcap)', (t) => t.log('skipped: not root'));

rootTest('address mode: the address appears on the interface, once, and goes away', async (t) => {
  const on = await runnerA!.activate(addressSpec, 1);
  t.true(on.changed);
  t.is(on.frames, 3);
  t.true((await addressesOn(hostA, 'eth0')).includes('10.77.0.100/24'));
  const again = await runnerA!.activate(addressSpec, 1);
  t.false(again.changed, 'EEXIST from the kernel is success for ensure');
  t.is((await addressesOn(hostA, 'eth0')).filter((a) => a === '10.77.0.100/24').length, 1);
  const off = await runnerA!.deactivate(addressSpec, 2);
  t.true(off.changed);
  t.false((await addressesOn(hostA, 'eth0')).includes('10.77.0.100/24'));
  t.false((await runnerA!.deactivate(addressSpec, 2)).changed, 'EADDRNOTAVAIL from the kernel is success for remove');
  t.true((await addressesOn(hostA, 'eth0')).includes('10.77.0.2/24'), 'the host address is untouched');
});

rootTest('address mode: admit rehearses the add and the delete against the kernel, which refuses both and changes nothing, with or without the address', async (t) => {
  // Their own VM ids: the fencing tokens of the other tests' VMs stay as those tests expect.
  const specs = [{ ...addressSpec, vmId: 'vm-rehearse' }, { ...address6Spec, vmId: 'vm-rehearse6' }];
  const before = await addressesOn(hostA, 'eth0');
  for (const spec of specs) {
    await runnerA!.admit(spec, 5);
    t.deepEqual(await addressesOn(hostA, 'eth0'), before, `${spec.address}: nothing added`);
  }
  const rehearse = (method: string, spec: typeof addressSpec) =>
    runnerA!.table<void>('addresses', method, { interface: spec.interface, address: spec.address, prefixLength: spec.prefixLength });
  for (const spec of specs) {
    await runnerA!.activate(spec, 5);
    const active = await addressesOn(hostA, 'eth0');
    t.true(active.includes(`${spec.address}/${spec.prefixLength}`));
    await rehearse('rehearseEnsure', spec);
    await rehearse('rehearseRemove', spec);
    t.deepEqual(await addressesOn(hostA, 'eth0'), active, `${spec.address}: held, and kept as it was`);
    await runnerA!.deactivate(spec, 5);
  }
  t.deepEqual(await addressesOn(hostA, 'eth0'), before);
  for (const method of ['rehearseEnsure', 'rehearseRemove']) {
    const err = await t.throwsAsync<RunnerCallError>(rehearse(method, { ...addressSpec, interface: 'no-such-if' }));
    t.regex(err!.message, /no-such-if/);
  }
});

rootTest('routed mode: host route to the tap and proxy ARP entry, both withdrawn', async (t) => {
  const routes = async () =>
    (await ipJson<Array<{ dst: string; dev: string }>>(hostA, ['route', 'show', 'table', 'main'])).filter((r) => r.dst === '10.77.1.5');
  const proxies = async () => (await ipJson<Array<{ dst: string }>>(hostA, ['neigh', 'show', 'proxy', 'dev', 'eth0'])).filter((p) => p.dst === '10.77.1.5');
  t.true((await runnerA!.activate(routedSpec, 1)).changed);
  t.false((await runnerA!.activate(routedSpec, 1)).changed, 'route and proxy entry found in place');
  t.deepEqual((await routes()).map((r) => r.dev), ['tapr']);
  t.is((await proxies()).length, 1);
  // The single-lookup presence check: this route through this device, not a covering one.
  const has = (destination: string, device: string) => runnerA!.table<boolean>('routes', 'hasHostRoute', { destination, device });
  t.true(await has('10.77.1.5', 'tapr'));
  t.false(await has('10.77.1.5', 'eth0'), 'another device');
  await lab.exec(hostA, 'ip', ['route', 'add', '10.77.9.0/24', 'dev', 'tapr']);
  t.false(await has('10.77.9.7', 'tapr'), 'only a /24 covers it');
  t.false(await has('198.51.100.7', 'tapr'), 'nothing covers it (no default route)');
  t.false(await has('10.77.1.5', 'no-such-tap'));
  // The neighbour asks for the VM's address and host A answers with its own MAC (proxy ARP).
  await lab.exec(nbr, 'ip', ['route', 'add', '10.77.1.0/24', 'dev', 'eth0']);
  const reply = await lab.exec(nbr, 'arping', ['-c', '1', '-w', '3', '-I', 'eth0', '10.77.1.5']);
  t.regex(reply, new RegExp(`bytes from ${macA} \\(10\\.77\\.1\\.5\\)`, 'i'));
  await runnerA!.deactivate(routedSpec, 2);
  t.deepEqual(await routes(), []);
  t.false(await has('10.77.1.5', 'tapr'));
  t.deepEqual(await proxies(), []);
  t.false((await runnerA!.deactivate(routedSpec, 2)).changed);
});

rootTest('bridged mode: static FDB entry on the tap and permanent neighbour, announced with the VM MAC', async (t) => {
  await lab.exec(nbr, 'ip', ['neigh', 'replace', '10.77.0.50', 'lladdr', NBR_MAC_STALE, 'dev', 'eth0', 'nud', 'stale']);
  const fdb = async () =>
    (await ipJson<Array<{ mac: string; state?: string; flags?: string[] }>>(hostC, ['fdb', 'show', 'dev', 'tapb'], 'bridge')).filter((e) => e.mac === VM_MAC);
  const neigh = async () => (await ipJson<Array<{ dst: string; lladdr: string; state: string[] }>>(hostC, ['neigh', 'show', 'dev', 'br0'])).filter((n) => n.dst === '10.77.0.50');
  // What a switchover finds on the destination: the bridge learned the VM MAC behind the uplink
  // (the guest ran elsewhere) and the host's neighbour entry is a learned, stale one. Neither is
  // the static state wanted, so the activation must replace both.
  await lab.exec(hostC, 'bridge', ['fdb', 'replace', VM_MAC, 'dev', 'eth0', 'master', 'dynamic']);
  await lab.exec(hostC, 'ip', ['neigh', 'replace', '10.77.0.50', 'lladdr', NBR_MAC_STALE, 'dev', 'br0', 'nud', 'stale']);
  const on = await runnerC!.activate(bridgedSpec, 1);
  t.true(on.changed);
  t.deepEqual(
    on.steps.filter((st) => st.step === 'fdb' || st.step === 'neighbor').map((st) => [st.step, st.changed]),
    [['fdb', true], ['neighbor', true]],
  );
  t.is(on.frames, 3);
  const again = await runnerC!.activate(bridgedSpec, 1);
  t.false(again.changed);
  t.deepEqual(
    again.steps.filter((st) => st.step === 'fdb' || st.step === 'neighbor').map((st) => st.changed),
    [false, false],
    'found in place by the single-entry lookups',
  );
  const entries = await fdb();
  t.is(entries.length, 1);
  t.is(entries[0].state, 'static');
  t.deepEqual((await neigh()).map((n) => [n.lladdr, n.state]), [[VM_MAC, ['PERMANENT']]]);
  t.is(await neighMac(nbr, '10.77.0.50'), VM_MAC, 'the neighbour learned the VM MAC from the burst');
  await runnerC!.deactivate(bridgedSpec, 2);
  t.deepEqual(await fdb(), []);
  t.deepEqual(await neigh(), []);
});

rootTest('bridged mode after admit: the switch goes through the tap admit resolved; a tap replaced since still loses its entry', async (t) => {
  const fdb = async () =>
    (await ipJson<Array<{ mac: string; state?: string }>>(hostC, ['fdb', 'show', 'dev', 'tapb'], 'bridge')).filter((e) => e.mac === VM_MAC && e.state === 'static');
  const neigh = async () => (await ipJson<Array<{ dst: string }>>(hostC, ['neigh', 'show', 'dev', 'br0'])).filter((n) => n.dst === '10.77.0.50');
  await runnerC!.admit(bridgedSpec, 3);
  t.true((await runnerC!.activate(bridgedSpec, 3)).changed);
  t.is((await fdb()).length, 1);
  t.is((await neigh()).length, 1);
  await runnerC!.admit(bridgedSpec, 4);
  // The tap is replaced after the admit (a new ifindex) and the entry made again on the new one:
  // the removal through the admitted (old) index finds nothing, and the fresh lookup finds it.
  await lab.exec(hostC, 'ip', ['link', 'del', 'tapb']);
  await lab.exec(hostC, 'ip', ['tuntap', 'add', 'dev', 'tapb', 'mode', 'tap']);
  await lab.exec(hostC, 'ip', ['link', 'set', 'tapb', 'master', 'br0']);
  await lab.exec(hostC, 'ip', ['link', 'set', 'tapb', 'up']);
  await lab.exec(hostC, 'bridge', ['fdb', 'replace', VM_MAC, 'dev', 'tapb', 'master', 'static']);
  t.is((await fdb()).length, 1);
  const off = await runnerC!.deactivate(bridgedSpec, 4);
  t.true(off.changed);
  t.deepEqual(await fdb(), []);
  t.deepEqual(await neigh(), []);
});

rootTest('a gratuitous ARP burst is captured in the neighbour and moves its ARP entry to the new MAC', async (t) => {
  await lab.exec(nbr, 'ip', ['neigh', 'replace', '10.77.0.100', 'lladdr', NBR_MAC_STALE, 'dev', 'eth0', 'nud', 'stale']);
  const dump = lab.spawn(nbr, 'tcpdump', ['-i', 'eth0', '-nn', '-e', '-l', '-c', '3', 'arp and src host 10.77.0.100']);
  let out = '';
  dump.stdout!.on('data', (d) => (out += d.toString()));
  let err = '';
  dump.stderr!.on('data', (d) => (err += d.toString()));
  await waitFor('tcpdump to listen', async () => err.includes('listening on'), 10000, 20);
  const exited = new Promise((r) => dump.once('exit', r));
  await runnerA!.activate(addressSpec, 3);
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  const lines = out.trim().split('\n').filter(Boolean);
  t.is(lines.length, 3, out + err);
  for (const l of lines) t.regex(l, new RegExp(`${macA} > ff:ff:ff:ff:ff:ff, ethertype ARP.*Request who-has 10\\.77\\.0\\.100 tell 10\\.77\\.0\\.100`));
  t.is(await neighMac(nbr, '10.77.0.100'), macA);
  await runnerA!.deactivate(addressSpec, 3);
});

rootTest('IPv6: an unsolicited NA (checksum verified by tcpdump) moves the neighbour entry', async (t) => {
  await lab.exec(nbr, 'ip', ['-6', 'neigh', 'replace', 'fd77::100', 'lladdr', NBR_MAC_STALE, 'dev', 'eth0', 'nud', 'stale']);
  const dump = lab.spawn(nbr, 'tcpdump', ['-i', 'eth0', '-nn', '-vv', '-l', '-c', '1', 'icmp6 and ip6[40] == 136']);
  let out = '';
  let err = '';
  dump.stdout!.on('data', (d) => (out += d.toString()));
  dump.stderr!.on('data', (d) => (err += d.toString()));
  await waitFor('tcpdump to listen', async () => err.includes('listening on'), 10000, 20);
  const exited = new Promise((r) => dump.once('exit', r));
  await runnerA!.activate(address6Spec, 1);
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  t.regex(out, /icmp6 sum ok/, out + err);
  t.regex(out, /neighbor advertisement, length 32, tgt is fd77::100/);
  t.true((await addressesOn(hostA, 'eth0')).includes('fd77::100/64'));
  const ipv6Neigh = await ipJson<Array<{ dst: string; lladdr?: string }>>(nbr, ['-6', 'neigh', 'show', 'fd77::100', 'dev', 'eth0']);
  t.is(ipv6Neigh[0]?.lladdr, macA);
  await runnerA!.deactivate(address6Spec, 1);
  t.false((await addressesOn(hostA, 'eth0')).includes('fd77::100/64'));
});

rootTest('a stale fencing token is refused, changes nothing, and stays refused after a restart', async (t) => {
  await runnerA!.activate(addressSpec, 10);
  const err = await t.throwsAsync<RunnerCallError>(runnerA!.deactivate(addressSpec, 9));
  t.is(err!.name, 'StaleFencingTokenError');
  t.is(err!.reason, 'FAILED_PRECONDITION');
  t.regex(err!.message, /fencing token 9 .*token 10 was already accepted/);
  t.true((await addressesOn(hostA, 'eth0')).includes('10.77.0.100/24'));
  // Restart the agent side: the LevelStore keeps the fence.
  await runnerA!.close();
  runnerA = NetRunner.start(lab, hostA, { fencingDir: join(dataDir, 'a') });
  runners.push(runnerA);
  await t.throwsAsync(runnerA.activate(addressSpec, 9), { name: 'StaleFencingTokenError' });
  t.true((await runnerA.activate(addressSpec, 10)).fencing!.reapplied);
  await runnerA.deactivate(addressSpec, 11);
  t.false((await addressesOn(hostA, 'eth0')).includes('10.77.0.100/24'));
});

rootTest('adapters: typed errors for a missing interface and list() in our vocabulary', async (t) => {
  const err = await t.throwsAsync<RunnerCallError>(runnerA!.activate({ ...addressSpec, vmId: 'vm-x', interface: 'nosuch0' }, 1));
  t.is(err!.name, 'LinkNotFoundError');
  t.is(err!.reason, 'NOT_FOUND');
  const list = await runnerA!.table<Array<{ interface: string; address: string; prefixLength: number }>>('addresses', 'list', 'eth0');
  t.deepEqual(list.find((a) => a.address === '10.77.0.2'), { interface: 'eth0', address: '10.77.0.2', prefixLength: 24 });
  t.false(await runnerA!.table<boolean>('routes', 'removeHostRoute', { destination: '10.77.9.9', device: 'nosuch0' }));
});

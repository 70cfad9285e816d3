// The lab's VM network (used by test/lab/lab.ts): a VM bridge with a dnsmasq namespace, a guest
// namespace whose udhcpc is VM vm1's DHCP client, a client namespace, each agent host's vm0 port,
// and the demo: shadows appear on destinations, then an IP switchover measured by a UDP prober.
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { waitFor } from '../../helpers/netns';
import { DIST, REPO_ROOT } from '../../helpers/umbra-cluster';
import { LAB_DIR, type LabState, writeLabState } from '../../lab/lab-state';

export const VM_NET = '10.79.0';
export const VM_ID = 'vm1';
export const VM_MAC = '52:54:00:79:00:01';
const VM_BRIDGE = 'vmnet';
const UDP_PORT = 7777;
const UDHCPC_SCRIPT = path.join(REPO_ROOT, 'test', 'os', 'ipshadow', 'udhcpc-record.sh');

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function spawnDetached(state: LabState, name: string, ns: string, cmd: string, args: string[]): void {
  const log = path.join(LAB_DIR, `${name}.log`);
  const fd = openSync(log, 'a');
  const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { detached: true, stdio: ['ignore', fd, fd], env: { ...process.env, UDHCPC_LOG: log } });
  closeSync(fd);
  child.unref();
  state.processes.push({ name, ns, pid: child.pid!, log });
  writeLabState(state);
}

let portIndex = 0;
/** Connects `ns` to the VM bridge as `ifname` (optionally with an address and a fixed MAC). */
export function attachToVmNetwork(state: LabState, switchNs: string, ns: string, ifname: string, opts: { address?: string; mac?: string } = {}): void {
  const outer = `vmp${portIndex++}`;
  ip(['link', 'add', outer, 'netns', switchNs, 'type', 'veth', 'peer', 'name', ifname, 'netns', ns]);
  if (opts.mac) ip(['-n', ns, 'link', 'set', ifname, 'address', opts.mac]);
  if (opts.address) ip(['-n', ns, 'addr', 'add', opts.address, 'dev', ifname]);
  ip(['-n', ns, 'link', 'set', ifname, 'up']);
  ip(['-n', switchNs, 'link', 'set', outer, 'master', VM_BRIDGE]);
  ip(['-n', switchNs, 'link', 'set', outer, 'up']);
  void state;
}

function addNs(state: LabState, ns: string): string {
  ip(['netns', 'add', ns]);
  state.namespaces.push(ns);
  ip(['-n', ns, 'link', 'set', 'lo', 'up']);
  writeLabState(state);
  return ns;
}

/** The VM bridge, DHCP server and client namespaces; call before the agents start. */
export function createVmNetwork(state: LabState, switchNs: string, nsPrefix: string): { clientNs: string; guestNs: string } {
  ip(['-n', switchNs, 'link', 'add', VM_BRIDGE, 'type', 'bridge']);
  // Ageing 0 floods every frame, so each host's capture sees the guest's unicast renewals as a capture on
  // the VM's tap would; forward_delay 0 so the ports forward at once.
  ip(['-n', switchNs, 'link', 'set', VM_BRIDGE, 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0', 'ageing_time', '0']);
  ip(['-n', switchNs, 'link', 'set', VM_BRIDGE, 'up']);
  const dhcpNs = addNs(state, `${nsPrefix}-dhcp`);
  attachToVmNetwork(state, switchNs, dhcpNs, 'eth0', { address: `${VM_NET}.1/24` });
  const clientNs = addNs(state, `${nsPrefix}-client`);
  attachToVmNetwork(state, switchNs, clientNs, 'eth0', { address: `${VM_NET}.9/24` });
  const guestNs = addNs(state, `${nsPrefix}-${VM_ID}`);
  attachToVmNetwork(state, switchNs, guestNs, 'eth0', { mac: VM_MAC });
  spawnDetached(state, 'dnsmasq', dhcpNs, 'dnsmasq', [
    '--no-daemon', '--conf-file=/dev/null', '--port=0', '--user=root', '--bind-interfaces', '--interface=eth0', '--except-interface=lo',
    '--dhcp-authoritative', '--no-ping', `--dhcp-leasefile=${path.join(LAB_DIR, 'dnsmasq.leases')}`,
    `--dhcp-range=${VM_NET}.50,${VM_NET}.150,255.255.255.0,600`, `--dhcp-option=option:router,${VM_NET}.1`,
    `--dhcp-option=option:dns-server,${VM_NET}.53`, '--dhcp-option=option:domain-name,vm.umbra.lab',
  ]);
  return { clientNs, guestNs };
}

/** Starts the guest's DHCP client (after the agents, so the source agent sees the first lease). */
export function startGuestDhcp(state: LabState, guestNs: string): void {
  spawnDetached(state, `udhcpc-${VM_ID}`, guestNs, 'udhcpc', ['-f', '-i', 'eth0', '-s', UDHCPC_SCRIPT, '-x', `hostname:${VM_ID}`, '-t', '20', '-T', '1', '-A', '2']);
}

/** The agent's `ipshadow` section: capture on vm0, VMs' addresses held in address mode; hv1 runs vm1. */
export function agentIpShadowSection(hostId: string, firstHost: string) {
  return { capture_interfaces: ['vm0'], mode: 'address', interface: 'vm0', report_interval_ms: 5000, vms: hostId === firstHost ? [{ id: VM_ID, mac: VM_MAC }] : [] };
}

/** Adds the coordinator's `ipshadow` section to a written config. */
export function addCoordinatorIpShadowSection(configPath: string): void {
  const cfg = parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
  // Every lab host is a namespace of this machine: the load they report is the machine's.
  cfg.ipshadow = { shadowing_threshold: 0.1, max_shadowed_vms: 2, placement_uses_host_load: false, shadowing_refresh_interval_ms: 2000, reconcile_interval_ms: 3000 };
  writeFileSync(configPath, stringify(cfg));
}

interface ShadowsJson {
  vms: Array<{ vm_id: string; active_host: string; version: string; config: { address: string } }>;
  shadows: Array<{ vm_id: string; host_id: string; state: string; version: string }>;
}

/** Shows shadows appearing, then switches vm1 while a client probes its address every 1 ms. */
export async function runShadowDemo(state: LabState, hosts: Record<string, string>, clientNs: string, umbractl: (args: string[]) => string): Promise<void> {
  console.log(`lab: waiting for ${VM_ID}'s lease to reach the coordinator and its shadows to be placed`);
  const s = await waitFor('vm1 with two warm shadows and its address active', async () => {
    const j = JSON.parse(umbractl(['shadows', '--json'])) as ShadowsJson;
    const vm = j.vms.find((v) => v.vm_id === VM_ID);
    const warm = j.shadows.filter((x) => x.vm_id === VM_ID && x.state === 'warm' && x.version === vm?.version);
    if (!vm || warm.length < 2) return undefined;
    const held = execFileSync('ip', ['-n', hosts[vm.active_host], '-4', 'addr', 'show', 'dev', 'vm0'], { encoding: 'utf8' }).includes(`${vm.config.address}/`);
    return held ? { vm, warm } : undefined;
  }, 60000, 1000);
  console.log('\n$ umbractl shadows');
  process.stdout.write(umbractl(['shadows']));
  const address = s.vm.config.address;
  const dest = s.warm[0].host_id;
  for (const [id, ns] of Object.entries(hosts)) {
    execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.ip_nonlocal_bind=1']);
    spawnDetached(state, `responder-${id}`, ns, process.execPath, [path.join(DIST, 'bench', 'ip-switchover', 'udp-responder.js'), address, String(UDP_PORT), id]);
  }
  await new Promise((r) => setTimeout(r, 1000));
  console.log(`\nlab: a client in ${clientNs} sends a UDP datagram to ${address} every 1 ms; each host's responder answers with its name`);
  const prober = spawn('ip', ['netns', 'exec', clientNs, process.execPath, path.join(DIST, 'bench', 'ip-switchover', 'udp-prober.js'), address, String(UDP_PORT), '1000'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: prober.stdout! })[Symbol.asyncIterator]();
  await lines.next();
  await new Promise((r) => setTimeout(r, 500));
  console.log(`\n$ umbractl migrate ${VM_ID} --to ${dest}`);
  try {
    process.stdout.write(umbractl(['migrate', VM_ID, '--to', dest]));
  } catch (err) {
    process.stdout.write((err as { stdout?: string }).stdout ?? String(err));
  }
  await new Promise((r) => setTimeout(r, 500));
  prober.stdin!.write('stop\n');
  const probe = JSON.parse((await lines.next()).value as string) as { answers: number; sent: number; maxGapMs: number; switchoverGapMs?: number; byTag: Record<string, number> };
  prober.kill();
  console.log(`\nlab: measured interruption seen by the client: ${probe.switchoverGapMs?.toFixed(1) ?? 'n/a'} ms between the last answer from the old host and the first from the new one (longest gap ${probe.maxGapMs.toFixed(1)} ms; answers by host ${JSON.stringify(probe.byTag)})`);
  console.log('\n$ umbractl events (last 6)');
  process.stdout.write(umbractl(['events', '--limit', '1000']).trimEnd().split('\n').slice(-6).join('\n') + '\n');
}

// The local lab (README's main command): network-namespace hosts joined by a management network,
// a coordinator and three agents with generated certificates, a VM network with a DHCP server and
// a client; hv1's agent launches a QEMU guest (TCG) which is then shadowed on two hosts and switched
// over on command, then by prediction, while the client probes it (test/lab/lab-story.ts). Left running until `lab down`.
// Usage: node dist/test/lab/lab.js up|down|status
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { parse } from 'yaml';
import path from 'node:path';
import { createCa, issueCertificate } from '../../shared/pki';
import { buildGuestImage } from '../helpers/guest-image';
import { addTap } from '../helpers/guest/guest-network';
import { waitFor } from '../helpers/netns';
import { AGENT_MAIN, COORDINATOR_MAIN, UMBRACTL, agentConfig, coordinatorConfig, launcherNodeFlags, writeYaml } from '../helpers/umbra-cluster';
import { type ClusterGuest, addVmSwitchoverSections, killQemusUnder, qemusUnder, vmAgentSections } from '../helpers/vm-cluster';
import { addHypervisorBridge, createVmNetwork } from './lab-vm-network';
import { addNs, execError, execIn, ip, startDetached } from './lab-os';
import { loadVmId, runStory } from './lab-story';
import { LAB_DIR, LAB_NS_PREFIX, LAB_SHADOW_IMAGE_DIR, type LabState, readLabState, writeLabState } from './lab-state';

const MGMT_NET = '10.78.0';
const COORD_IP = `${MGMT_NET}.1`;
const AGENTS = ['hv1', 'hv2', 'hv3'];
const SOURCE_HOST = AGENTS[0];
const SWITCH_NS = `${LAB_NS_PREFIX}-sw`;
const COORD_NS = `${LAB_NS_PREFIX}-coord`;
/** Where the guest is first switched to on command, and then away from by prediction. */
const PREDICT_HOST = AGENTS[1];
const GUEST = { id: 'vm1', mac: '52:54:00:79:00:01', tap: 'tap-vm1', memoryBytes: 128 * 1024 * 1024, workload: { port: 7007, memwriteMb: 8, memwriteRateMbps: 10 } };

function profiledVms(hostId: string, guest: ClusterGuest) {
  return [
    { vm_id: guest.id, pidfile: path.join(LAB_DIR, hostId, `${guest.id}.pid`), vcpus: 1, memory_bytes: guest.memoryBytes },
    { vm_id: loadVmId(hostId), pidfile: path.join(LAB_DIR, hostId, 'load.pid'), vcpus: 1 },
  ];
}

/** A host namespace with eth0 on the management bridge. */
function addHost(state: LabState, name: string, address: string, index: number): string {
  const ns = addNs(state, `${LAB_NS_PREFIX}-${name}`);
  const outer = `lab${index}`;
  ip(['link', 'add', outer, 'netns', SWITCH_NS, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
  ip(['-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
  ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
  ip(['-n', SWITCH_NS, 'link', 'set', outer, 'master', 'mgmt']);
  ip(['-n', SWITCH_NS, 'link', 'set', outer, 'up']);
  return ns;
}

function umbractl(state: LabState, args: string[]): string {
  return execIn(COORD_NS, process.execPath, [UMBRACTL, '--coordinator', state.coordinator, '--ca', state.operator.ca, '--cert', state.operator.cert, '--key', state.operator.key, ...args]);
}

function agentHealth(hostId: string, json: boolean): string {
  const args = [AGENT_MAIN, 'health', '--config', path.join(LAB_DIR, hostId, 'agent.yaml'), ...(json ? ['--json'] : [])];
  try {
    return execIn(`${LAB_NS_PREFIX}-${hostId}`, process.execPath, args);
  } catch (err) {
    // Exit 1 = unhealthy, with the report on stdout all the same.
    const out = (err as { stdout?: string }).stdout;
    if (out) return out;
    throw err;
  }
}

function signalAll(pids: number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

async function down(): Promise<void> {
  const state = readLabState();
  const known = new Set(state?.namespaces ?? []);
  // The agents first, so that none relaunches a shadow QEMU, then the QEMUs they launched (they
  // outlive their agent by design): those with a QMP socket under the lab dir, by PID.
  const pids = (state?.processes ?? []).map((p) => p.pid);
  signalAll(pids, 'SIGTERM');
  await new Promise((r) => setTimeout(r, 1000));
  signalAll(pids, 'SIGKILL');
  const qemus = await killQemusUnder(LAB_DIR);
  // Namespaces named by us, also those of a lab whose state file was lost; taps and bridges go with them.
  const listed = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0]);
  const namespaces = listed.filter((n) => n.startsWith(`${LAB_NS_PREFIX}-`) || known.has(n));
  for (const ns of namespaces) {
    try {
      ip(['netns', 'del', ns]);
    } catch {
      // already gone
    }
  }
  rmSync(LAB_DIR, { recursive: true, force: true });
  rmSync(LAB_SHADOW_IMAGE_DIR, { recursive: true, force: true });
  console.log(`lab: removed (${pids.length} processes, ${qemus.length} QEMU processes, ${namespaces.length} namespaces)`);
}

async function up(): Promise<void> {
  const t0 = Date.now();
  const say = (text: string) => console.log(`lab [${String(Math.round((Date.now() - t0) / 1000)).padStart(3)} s]: ${text}`);
  if (readLabState() || existsSync(`/run/netns/${SWITCH_NS}`)) {
    say('an earlier lab exists; removing it first');
    await down();
  }
  const pkiDir = path.join(LAB_DIR, 'pki');
  const state: LabState = {
    createdAt: new Date().toISOString(),
    namespaces: [],
    processes: [],
    coordinator: `${COORD_IP}:7700`,
    operator: { ca: path.join(pkiDir, 'ca.crt'), cert: path.join(pkiDir, 'operator-lab.crt'), key: path.join(pkiDir, 'operator-lab.key') },
  };
  writeLabState(state);
  say('building the guest (the Debian kernel and a busybox initramfs with virtio-net and a workload; cached)');
  const image = await buildGuestImage();
  const guest: ClusterGuest = { ...GUEST, image, dir: path.join(LAB_DIR, SOURCE_HOST) };
  say('creating the cluster CA and certificates');
  await createCa(pkiDir);
  const tlsFor = async (role: 'coordinator' | 'agent' | 'operator', name: string) => {
    const f = await issueCertificate({ caDir: pkiDir, identity: { role, name }, outDir: pkiDir });
    return { ca: path.join(pkiDir, 'ca.crt'), cert: f.certPath, key: f.keyPath };
  };
  const coordTls = await tlsFor('coordinator', 'coordinator');
  await tlsFor('operator', 'lab');

  say(`creating namespace hosts on the management network ${MGMT_NET}.0/24`);
  addNs(state, SWITCH_NS);
  ip(['-n', SWITCH_NS, 'link', 'add', 'mgmt', 'type', 'bridge']);
  ip(['-n', SWITCH_NS, 'link', 'set', 'mgmt', 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0']);
  ip(['-n', SWITCH_NS, 'link', 'set', 'mgmt', 'up']);
  const coordNs = addHost(state, 'coord', COORD_IP, 0);
  const coordCfg = coordinatorConfig(path.join(LAB_DIR, 'coordinator'), coordTls, { suspect_after_ms: 3000, down_after_ms: 10000 });
  addVmSwitchoverSections(coordCfg, { maxShadowedVms: 2 });
  // Seconds instead of minutes (1.2 s samples, a 6 s horizon). The hosts share one machine, so a
  // host's load is the sum of its VMs' (use_host_load off); it saturates at 30% of its CPUs.
  writeYaml(coordCfg, { ...(parse(readFileSync(coordCfg, 'utf8')) as object), prediction: { sample_interval_minutes: 0.02, horizon_minutes: 0.1, use_host_load: false, saturation_fraction: 0.3, evaluation_interval_ms: 500 } });
  startDetached(state, 'coordinator', coordNs, process.execPath, [...launcherNodeFlags(COORDINATOR_MAIN), COORDINATOR_MAIN, '--config', coordCfg]);
  say('creating the VM network 10.79.0.0/24: dnsmasq (DHCP), a client; each host a VM bridge br0 uplinked to it');
  const vmNet = createVmNetwork(state, SWITCH_NS, LAB_NS_PREFIX);
  const hostNs: Record<string, string> = {};
  for (const [i, id] of AGENTS.entries()) {
    const addr = `${MGMT_NET}.${11 + i}`;
    const ns = addHost(state, id, addr, i + 1);
    hostNs[id] = ns;
    addHypervisorBridge(SWITCH_NS, ns);
    if (id === SOURCE_HOST) await addTap(ns, guest.tap);
    const sections = vmAgentSections(id, addr, SOURCE_HOST, guest, { shadowDataDir: id === SOURCE_HOST ? undefined : path.join(LAB_DIR, id, 'data') });
    // The profiler watches, on the host the guest moves to first, the guest's QEMU and a load generator (pid files the story writes).
    const profiler = id === PREDICT_HOST ? { interval_ms: 300, batch_samples: 2, vms: profiledVms(id, guest) } : { interval_ms: 1000, vms: [] };
    const cfg = agentConfig(path.join(LAB_DIR, id), id, addr, COORD_IP, await tlsFor('agent', id), { ...sections, profiler, shadow_image_dir: path.join(LAB_SHADOW_IMAGE_DIR, id) });
    startDetached(state, `agent-${id}`, ns, process.execPath, [...launcherNodeFlags(AGENT_MAIN), AGENT_MAIN, '--config', cfg]);
  }
  say('waiting for the agents to register');
  await waitFor('all agents up', async () => {
    const hosts = JSON.parse(umbractl(state, ['hosts', '--json'])) as Array<{ state: string }>;
    return hosts.length === AGENTS.length && hosts.every((h) => h.state === 'HOST_STATE_UP');
  }, 30000, 500);
  console.log('\n$ umbractl hosts');
  process.stdout.write(umbractl(state, ['hosts']));
  console.log(`\n$ umbra-agent health   (on ${SOURCE_HOST})`);
  try {
    process.stdout.write(agentHealth(SOURCE_HOST, false));
  } catch (err) {
    console.log(execError(err));
  }
  console.log('');
  const { address } = await runStory({
    state,
    hostNs,
    clientNs: vmNet.clientNs,
    coordNs,
    guest,
    sourceHost: SOURCE_HOST,
    predictHost: PREDICT_HOST,
    umbractl: (args) => umbractl(state, args),
    agentHealth: (hostId) => JSON.parse(agentHealth(hostId, true)),
    say,
  });
  console.log(`
The lab is running (up in ${Math.round((Date.now() - t0) / 1000)} s). Logs: ${LAB_DIR}/*.log; guest console: ${path.join(guest.dir, `${guest.id}.serial`)}
  Run umbractl against it:  sudo ip netns exec ${coordNs} node ${UMBRACTL} --coordinator ${state.coordinator} \\
      --ca ${state.operator.ca} --cert ${state.operator.cert} --key ${state.operator.key} shadows
  Probe the guest:          sudo ip netns exec ${vmNet.clientNs} ping ${address}
  Status / stop:            sudo scripts/lab.sh status;  sudo scripts/lab.sh down`);
}

async function status(): Promise<void> {
  const state = readLabState();
  if (!state) {
    console.log('lab: not running');
    return;
  }
  for (const p of state.processes) {
    let alive = true;
    try {
      process.kill(p.pid, 0);
    } catch {
      alive = false;
    }
    console.log(`${p.name.padEnd(16)} pid ${String(p.pid).padEnd(8)} ${alive ? 'running' : 'exited '}  ${p.log}`);
  }
  // QEMUs the agents launched: the guest (and its paused source copy after a switchover) and the shadows.
  for (const q of await qemusUnder(LAB_DIR)) {
    const host = path.relative(LAB_DIR, q.qmpSocketPath).split(path.sep)[0];
    console.log(`${`qemu-${host}`.padEnd(16)} pid ${String(q.pid).padEnd(8)} running  QMP ${q.qmpSocketPath}`);
  }
  console.log('\n$ umbra-agent health   (VMs and shadow VMs on each host)');
  for (const id of AGENTS) {
    try {
      const caps = (JSON.parse(agentHealth(id, true)) as { report?: { capabilities: Array<{ name: string; detail: string }> } }).report?.capabilities ?? [];
      const detail = (name: string) => caps.find((c) => c.name === name)?.detail ?? '-';
      console.log(`  ${id}: vms: ${detail('vms')}; shadow-vms: ${detail('shadow-vms')}`);
    } catch (err) {
      console.log(`  ${id}: ${execError(err).split('\n')[0]}`);
    }
  }
  for (const args of [['hosts'], ['shadows']]) {
    process.stdout.write(`\n$ umbractl ${args.join(' ')}\n`);
    try {
      process.stdout.write(umbractl(state, args));
    } catch (err) {
      console.log(execError(err));
    }
  }
}

const command = process.argv[2] ?? 'up';
const actions: Record<string, () => Promise<void>> = { up, down, status };
if (!actions[command]) {
  console.error('usage: lab.sh up|down|status');
  process.exit(2);
}
actions[command]().catch((err) => {
  console.error(`lab: ${(err as Error).message}`);
  process.exit(1);
});

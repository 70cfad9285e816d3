// The local lab (README's main command): network-namespace hosts joined by a management
// network, a coordinator and three agents with generated certificates, left running until
// `lab down`. Usage: node dist/test/lab/lab.js up|down|status
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, rmSync } from 'node:fs';
import path from 'node:path';
import { createCa, issueCertificate } from '../../shared/pki';
import { waitFor } from '../helpers/netns';
import { AGENT_MAIN, COORDINATOR_MAIN, UMBRACTL, agentConfig, coordinatorConfig } from '../helpers/umbra-cluster';
import { addCoordinatorIpShadowSection, agentIpShadowSection, attachToVmNetwork, createVmNetwork, runShadowDemo, startGuestDhcp } from '../e2e/ipshadow/lab-vm-network';
import { LAB_DIR, LAB_NS_PREFIX, type LabProcess, type LabState, readLabState, writeLabState } from './lab-state';

const MGMT_NET = '10.78.0';
const COORD_IP = `${MGMT_NET}.1`;
const AGENTS = ['hv1', 'hv2', 'hv3'];
const SWITCH_NS = `${LAB_NS_PREFIX}-sw`;

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function addHost(state: LabState, name: string, address: string, index: number): string {
  const ns = `${LAB_NS_PREFIX}-${name}`;
  ip(['netns', 'add', ns]);
  state.namespaces.push(ns);
  ip(['-n', ns, 'link', 'set', 'lo', 'up']);
  const outer = `lab${index}`;
  ip(['link', 'add', outer, 'netns', SWITCH_NS, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
  ip(['-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
  ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
  ip(['-n', SWITCH_NS, 'link', 'set', outer, 'master', 'mgmt']);
  ip(['-n', SWITCH_NS, 'link', 'set', outer, 'up']);
  return ns;
}

function startDetached(state: LabState, name: string, ns: string, args: string[]): LabProcess {
  const log = path.join(LAB_DIR, `${name}.log`);
  const fd = openSync(log, 'a');
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, ...args], { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  child.unref();
  const p = { name, ns, pid: child.pid!, log };
  state.processes.push(p);
  writeLabState(state);
  return p;
}

function umbractl(state: LabState, args: string[]): string {
  return execFileSync('ip', ['netns', 'exec', `${LAB_NS_PREFIX}-coord`, process.execPath, UMBRACTL, '--coordinator', state.coordinator,
    '--ca', state.operator.ca, '--cert', state.operator.cert, '--key', state.operator.key, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

async function down(): Promise<void> {
  const state = readLabState();
  const known = new Set(state?.namespaces ?? []);
  for (const p of state?.processes ?? []) {
    try {
      process.kill(p.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  await new Promise((r) => setTimeout(r, 1000));
  for (const p of state?.processes ?? []) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  // Namespaces named by us, also those of a lab whose state file was lost.
  const listed = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0]);
  for (const ns of listed.filter((n) => n.startsWith(`${LAB_NS_PREFIX}-`) || known.has(n))) {
    try {
      ip(['netns', 'del', ns]);
    } catch {
      // already gone
    }
  }
  rmSync(LAB_DIR, { recursive: true, force: true });
  console.log('lab: removed');
}

async function up(): Promise<void> {
  if (readLabState() || existsSync(`/run/netns/${SWITCH_NS}`)) {
    console.log('lab: an earlier lab exists; removing it first');
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
  console.log('lab: creating the cluster CA and certificates');
  await createCa(pkiDir);
  const tlsFor = async (role: 'coordinator' | 'agent' | 'operator', name: string) => {
    const f = await issueCertificate({ caDir: pkiDir, identity: { role, name }, outDir: pkiDir });
    return { ca: path.join(pkiDir, 'ca.crt'), cert: f.certPath, key: f.keyPath };
  };
  const coordTls = await tlsFor('coordinator', 'coordinator');
  await tlsFor('operator', 'lab');

  console.log('lab: creating namespace hosts on the management network 10.78.0.0/24');
  ip(['netns', 'add', SWITCH_NS]);
  state.namespaces.push(SWITCH_NS);
  ip(['-n', SWITCH_NS, 'link', 'add', 'mgmt', 'type', 'bridge']);
  ip(['-n', SWITCH_NS, 'link', 'set', 'mgmt', 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0']);
  ip(['-n', SWITCH_NS, 'link', 'set', 'mgmt', 'up']);
  const coordNs = addHost(state, 'coord', COORD_IP, 0);
  writeLabState(state);

  const coordCfg = coordinatorConfig(path.join(LAB_DIR, 'coordinator'), coordTls, { suspect_after_ms: 3000, down_after_ms: 10000 });
  addCoordinatorIpShadowSection(coordCfg);
  startDetached(state, 'coordinator', coordNs, [COORDINATOR_MAIN, '--config', coordCfg]);
  console.log('lab: creating the VM network 10.79.0.0/24: dnsmasq, guest vm1 (udhcpc), a client');
  const vmNet = createVmNetwork(state, SWITCH_NS, LAB_NS_PREFIX);
  const hostNs: Record<string, string> = {};
  for (const [i, id] of AGENTS.entries()) {
    const addr = `${MGMT_NET}.${11 + i}`;
    const ns = addHost(state, id, addr, i + 1);
    hostNs[id] = ns;
    attachToVmNetwork(state, SWITCH_NS, ns, 'vm0');
    const cfg = agentConfig(path.join(LAB_DIR, id), id, addr, COORD_IP, await tlsFor('agent', id), { ipshadow: agentIpShadowSection(id, AGENTS[0]) });
    startDetached(state, `agent-${id}`, ns, [AGENT_MAIN, '--config', cfg]);
  }
  writeLabState(state);
  console.log('lab: waiting for the agents to register');
  await waitFor('all agents up', async () => {
    const hosts = JSON.parse(umbractl(state, ['hosts', '--json'])) as Array<{ state: string }>;
    return hosts.length === AGENTS.length && hosts.every((h) => h.state === 'HOST_STATE_UP');
  }, 30000, 500);
  console.log('\n$ umbractl hosts');
  process.stdout.write(umbractl(state, ['hosts']));
  console.log(`\n$ umbra-agent health   (on hv1)`);
  try {
    process.stdout.write(execFileSync('ip', ['netns', 'exec', `${LAB_NS_PREFIX}-hv1`, process.execPath, AGENT_MAIN, 'health', '--config', path.join(LAB_DIR, 'hv1', 'agent.yaml')], { encoding: 'utf8' }));
  } catch (err) {
    process.stdout.write((err as { stdout?: string }).stdout ?? String(err));
  }
  startGuestDhcp(state, vmNet.guestNs);
  await runShadowDemo(state, hostNs, vmNet.clientNs, (args) => umbractl(state, args));
  console.log(`
The lab is running. Logs: ${LAB_DIR}/*.log
  Run umbractl against it:  sudo ip netns exec ${coordNs} node ${UMBRACTL} --coordinator ${state.coordinator} \\
      --ca ${state.operator.ca} --cert ${state.operator.cert} --key ${state.operator.key} hosts
  Stop and clean up:        sudo scripts/lab.sh down`);
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
  process.stdout.write('\n' + umbractl(state, ['hosts']));
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

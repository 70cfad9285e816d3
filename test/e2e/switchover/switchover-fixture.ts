// Shared setup of the switchover failure e2e tests (rollback, coordinator restart, stale token):
// a coordinator and two agents (hv-a, hv-b) in network namespaces, hv-a's agent runs a QEMU (TCG)
// guest that takes its address from dnsmasq, its RAM replicated to hv-b where the coordinator
// prepares a shadow QEMU. Helpers to watch a switchover's progress with `umbractl migrate` (so a
// test can act when a step starts), to ask the agents over gRPC with the coordinator's identity
// (QueryVm, GetIpState, ActivateIp) and to kill/restart the coordinator by PID. Everything created
// is removed by cleanup(), which the tests call from after.always.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { nativeAvailable } from '../../../agent/memory/native-binding';
import { buildGuestImage } from '../../helpers/guest-image';
import { HOST_VM_BRIDGE, addHypervisorHost, addTap, queryGuestStat, startDnsmasq } from '../../helpers/guest/guest-network';
import { guestAddressFromSerial, type GuestStat } from '../../helpers/guest/guest-stat';
import { NetnsLab, isRoot, run, waitFor } from '../../helpers/netns';
import { QmpClient } from '../../../agent/vm/qmp-client';
import { createPkiFixture, type PkiFixture } from '../../helpers/pki-fixture';
import {
  AGENT_MAIN,
  AGENT_PORT,
  COORDINATOR_MAIN,
  GRPC_CALL,
  MGMT_BRIDGE,
  MGMT_PREFIX,
  UMBRACTL,
  COORDINATOR_PORT,
  type ProcessHandle,
  agentConfig,
  coordinatorConfig,
  startNode,
  umbractlJson,
  waitForLog,
  writeYaml,
} from '../../helpers/umbra-cluster';
import { type ClusterGuest, addVmSwitchoverSections, guestSerialPath, killQemusUnder, pidExists, qemusUnder, vmAgentSections } from '../../helpers/vm-cluster';

export const VM = 'g1';
export const PORT = 7007;
export const COORD_IP = `${MGMT_PREFIX}.1`;
export const HOSTS: Array<[string, string]> = [['hv-a', `${MGMT_PREFIX}.11`], ['hv-b', `${MGMT_PREFIX}.12`]];
const MAC = '52:54:00:78:00:01';
const MEMORY_BYTES = 128 * 1024 * 1024;
const VMNET = '10.78.0';

export function skipReason(): string | undefined {
  if (!isRoot()) return 'needs root (namespaces, taps, pidfd_getfd)';
  if (!nativeAvailable()) return 'native addon not built';
  for (const bin of ['qemu-system-x86_64', 'dnsmasq']) {
    try {
      execFileSync(bin, ['--version'], { stdio: 'ignore' });
    } catch {
      return `${bin} is not installed`;
    }
  }
  return undefined;
}

/** A step line of `umbractl migrate`'s progress: the step started (`...`) or ended. */
export interface StepLine {
  step: string;
  host: string;
  started: boolean;
}

/** What one `umbractl migrate` run printed. */
export interface MigrateRun {
  code: number | null;
  stdout: string;
  stderr: string;
  steps: StepLine[];
  /** The outcome line's status (SUCCEEDED | ROLLED_BACK | FAILED), when it was printed. */
  status?: string;
  /** The fencing token from the outcome line. */
  fencingToken?: number;
}

export interface AgentCallResult {
  code: number;
  details: string;
  response?: Record<string, unknown>;
}

export interface VmCopy {
  host: string;
  status: string;
  running: boolean;
  pid: number;
}

/** What the guest is (defaults: the e2e tests' 128 MiB guest with a light writer). */
export interface SwitchoverClusterOptions {
  memoryBytes?: number;
  workload?: { memwriteMb: number; memwriteRateMbps: number; fillPct?: number };
  /** Replication rounds of the source agent (vmAgentSections' default when absent). */
  roundIntervalMs?: number;
  /** How often the coordinator reconciles shadow VMs (default 500 ms, quick for tests). */
  shadowVmIntervalMs?: number;
  /** More keys of the coordinator's `switchover` section. */
  switchover?: Record<string, unknown>;
}

export class SwitchoverCluster {
  lab!: NetnsLab;
  pki!: PkiFixture;
  guest!: ClusterGuest;
  guestIp = '';
  coordinator!: ProcessHandle;
  readonly ns: Record<string, string> = {};
  readonly agents: Record<string, ProcessHandle> = {};
  private coordCfg = '';

  constructor(private readonly opts: SwitchoverClusterOptions = {}) {}

  async start(tag: string): Promise<void> {
    const image = await buildGuestImage();
    this.pki = await createPkiFixture(HOSTS.map(([h]) => h));
    const pki = this.pki;
    this.guest = { id: VM, mac: MAC, tap: 'tap-g1', memoryBytes: this.opts.memoryBytes ?? MEMORY_BYTES, image, workload: { port: PORT, ...(this.opts.workload ?? { memwriteMb: 8, memwriteRateMbps: 10 }) }, dir: path.join(pki.dir, 'hv-a') };
    this.lab = new NetnsLab(tag);
    const lab = this.lab;
    await lab.start();
    for (const [name, ip] of [['coord', COORD_IP], ...HOSTS]) {
      this.ns[name] = name === 'coord' ? await lab.addHost(name) : await addHypervisorHost(lab, name, 'vmnet');
      await lab.link(this.ns[name], { bridge: MGMT_BRIDGE, ifname: 'eth0', address: `${ip}/24` });
    }
    this.ns.dhcp = await lab.addHost('dhcp');
    await lab.link(this.ns.dhcp, { bridge: 'vmnet', ifname: 'eth0', address: `${VMNET}.1/24` });
    await startDnsmasq(lab, this.ns.dhcp, { ifname: 'eth0', rangeStart: `${VMNET}.100`, rangeEnd: `${VMNET}.150`, workDir: pki.dir });
    this.ns.cli = await lab.addHost('cli');
    await lab.link(this.ns.cli, { bridge: 'vmnet', ifname: 'eth0', address: `${VMNET}.2/24` });
    await addTap(this.ns['hv-a'], this.guest.tap);

    this.coordCfg = coordinatorConfig(path.join(pki.dir, 'coord'), pki.coordinator);
    // These tests drive replication as an operator does (umbractl replication start), unless a test
    // turns the coordinator's own placement of memory shadows on.
    addVmSwitchoverSections(this.coordCfg, { maxShadowedVms: 1, shadowVmIntervalMs: this.opts.shadowVmIntervalMs, switchover: { memory_follows_shadows: false, ...this.opts.switchover } });
    await this.startCoordinator();
    for (const [id, ip] of HOSTS) {
      this.agents[id] = startNode(lab, this.ns[id], [AGENT_MAIN, '--config', agentConfig(this.agentDir(id), id, ip, COORD_IP, pki.agent(id), vmAgentSections(id, ip, 'hv-a', this.guest, { roundIntervalMs: this.opts.roundIntervalMs }))]);
    }
    await this.waitHostsUp();
    const serial = guestSerialPath(this.guest);
    this.guestIp = await waitFor('guest lease on the serial console', async () => {
      try {
        return guestAddressFromSerial(readFileSync(serial, 'utf8'));
      } catch {
        return undefined;
      }
    }, 120000, 500).catch((err) => {
      throw new Error(`${(err as Error).message}; agent log: ${this.agents['hv-a'].log.slice(-15).join('\n')}`);
    });
  }

  agentDir(hostId: string): string {
    return path.join(this.pki.dir, hostId);
  }

  /** Sets keys of the coordinator's `switchover` section for its next start. */
  setSwitchoverConfig(keys: Record<string, unknown>): void {
    const cfg = parse(readFileSync(this.coordCfg, 'utf8')) as { switchover?: Record<string, unknown> };
    cfg.switchover = { ...cfg.switchover, ...keys };
    writeYaml(this.coordCfg, cfg);
  }

  async startCoordinator(): Promise<void> {
    this.coordinator = startNode(this.lab, this.ns.coord, [COORDINATOR_MAIN, '--config', this.coordCfg]);
    await waitForLog(this.coordinator, /coordinator started/, 'coordinator start', 30000);
  }

  /** SIGKILL of the coordinator's process by its PID; resolves once it has exited. */
  async killCoordinator(): Promise<void> {
    const child = this.coordinator.child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }

  async waitHostsUp(timeoutMs = 30000): Promise<void> {
    await waitFor('agents registered and up', async () => {
      const hosts = await this.ctl<Array<{ state: string }>>(['hosts']);
      return hosts.length === HOSTS.length && hosts.every((h) => h.state === 'HOST_STATE_UP');
    }, timeoutMs, 300);
  }

  ctl<T>(args: string[]): Promise<T> {
    return umbractlJson<T>(this.lab, this.ns.coord, this.pki.operator, COORD_IP, args);
  }

  /** One unary call to `hostId`'s agent with the coordinator's identity, from the coordinator's namespace. */
  async agentCall(hostId: string, service: string, method: string, request: Record<string, unknown>): Promise<AgentCallResult> {
    const ip = HOSTS.find(([h]) => h === hostId)![1];
    const c = this.pki.coordinator;
    const out = await this.lab.exec(this.ns.coord, process.execPath, [GRPC_CALL, `umbra.agent.v1.${service}`, method, `${ip}:${AGENT_PORT}`, c.ca, c.cert, c.key, 'agent', JSON.stringify(request)]);
    return JSON.parse(out) as AgentCallResult;
  }

  /** The local QEMU copy of the guest on each host that has one (QueryVm, QMP status as the agent reads it). */
  async localCopies(): Promise<VmCopy[]> {
    const out: VmCopy[] = [];
    for (const [h] of HOSTS) {
      const r = await this.agentCall(h, 'VmService', 'QueryVm', { vm_id: VM, role: 'VM_ROLE_LOCAL' });
      if (r.code === 5) continue; // NOT_FOUND: no local copy
      if (r.code !== 0) throw new Error(`QueryVm on ${h}: ${r.code} ${r.details}`);
      const vm = r.response!.vm as { status: string; running: boolean; pid: number };
      out.push({ host: h, status: vm.status, running: vm.running, pid: vm.pid });
    }
    return out;
  }

  /** The hosts whose kernel tables hold the guest's address active (GetIpState on every agent). */
  async ipActiveHosts(): Promise<Array<{ host: string; token: number }>> {
    const out: Array<{ host: string; token: number }> = [];
    for (const [h] of HOSTS) {
      const r = await this.agentCall(h, 'IpShadowService', 'GetIpState', { vm_id: VM });
      // Every host here holds the VM's IP config (hv-a its own VM, hv-b the shadow or the active
      // copy); NOT_FOUND means a shadow was retired, e.g. by a restarted coordinator.
      if (r.code !== 0) {
        const coord = this.coordinator.log.filter((l) => /shadow|host hv-/.test(l)).slice(-10).join('\n');
        throw new Error(`GetIpState on ${h}: ${r.code} ${r.details}; coordinator: ${coord}`);
      }
      if (r.response!.active) out.push({ host: h, token: Number(r.response!.fencing_token) });
    }
    return out;
  }

  /**
   * QEMUs launched by `hostId`'s agent (QMP sockets under its dir) whose QMP status says running,
   * asked directly (they outlive the agent): for a host whose agent is gone.
   */
  async runningQemusOf(hostId: string): Promise<number[]> {
    const out: number[] = [];
    for (const q of await qemusUnder(this.agentDir(hostId))) {
      const qmp = await QmpClient.connect(q.qmpSocketPath).catch(() => undefined);
      if (!qmp) continue;
      try {
        if ((await qmp.queryStatus()).running) out.push(q.pid);
      } finally {
        qmp.close();
      }
    }
    return out;
  }

  /** The guest's address is active in `hostId`'s kernel tables (bridged mode: a permanent neighbour on the VM bridge). */
  async ipActiveInNamespace(hostId: string): Promise<boolean> {
    const out = await run('ip', ['-n', this.ns[hostId], 'neigh', 'show', this.guestIp, 'dev', HOST_VM_BRIDGE, 'nud', 'permanent']);
    return out.trim() !== '';
  }

  probe(): Promise<GuestStat | undefined> {
    return queryGuestStat(this.lab, this.ns.cli, this.guestIp, PORT);
  }

  /** Polls until the guest answers with a counter above `above`. */
  waitCounterAbove(above: number, what: string, timeoutMs = 20000): Promise<GuestStat> {
    return waitFor(what, async () => {
      const s = await this.probe();
      return s && s.counter > above ? s : undefined;
    }, timeoutMs, 300);
  }

  /**
   * `umbractl migrate VM --to dest` (progress on screen), calling `onStep` for each step line as
   * it is printed. Resolves when umbractl exits.
   */
  migrate(dest: string, onStep: (s: StepLine) => void = () => undefined): Promise<MigrateRun> {
    const op = this.pki.operator;
    const child = this.lab.spawn(this.ns.coord, process.execPath, [UMBRACTL, '--coordinator', `${COORD_IP}:${COORDINATOR_PORT}`, '--ca', op.ca, '--cert', op.cert, '--key', op.key, 'migrate', VM, '--to', dest]);
    const run: MigrateRun = { code: null, stdout: '', stderr: '', steps: [] };
    let partial = '';
    let inTable = false;
    child.stdout!.on('data', (d: Buffer) => {
      run.stdout += d.toString();
      partial += d.toString();
      const lines = partial.split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        if (line === 'step timings:') inTable = true;
        const m = /^\s+([a-z][a-z-]+)\s+(\S+)\s+(\.\.\.|.*\b(?:ok|FAILED:.*))$/.exec(line);
        // Progress lines come before the "step timings:" table; only those are reported live.
        if (m && !inTable) {
          const s = { step: m[1], host: m[2], started: m[3] === '...' };
          run.steps.push(s);
          onStep(s);
        }
        const o = /^(SUCCEEDED|ROLLED_BACK|FAILED): .*fencing token (\d+)/.exec(line);
        if (o) {
          run.status = o[1];
          run.fencingToken = Number(o[2]);
        }
      }
    });
    child.stderr!.on('data', (d: Buffer) => (run.stderr += d.toString()));
    return new Promise((resolve) => child.once('exit', (code) => resolve({ ...run, code })));
  }

  /**
   * Repeats `migrate` until the coordinator accepts it (a refusal prints no step), i.e. until the
   * shadow on `dest` is ready: IP shadow current, shadow QEMU waiting, memory streaming.
   */
  async migrateWhenReady(dest: string, onStep: (s: StepLine) => void = () => undefined, opts: { beforeAttempt?: () => Promise<boolean>; timeoutMs?: number } = {}): Promise<MigrateRun> {
    let last: MigrateRun | undefined;
    return waitFor('switchover accepted', async () => {
      // The test may need something first (e.g. the shadow QEMU's pid): no attempt without it.
      if (opts.beforeAttempt && !(await opts.beforeAttempt())) return undefined;
      last = await this.migrate(dest, onStep);
      return last.steps.length > 0 ? last : undefined;
    }, opts.timeoutMs ?? 90000, 1500).catch((err) => {
      throw new Error(`${(err as Error).message}; last refusal: ${last?.stderr.trim()}; ${dest} agent: ${this.agents[dest].log.filter((l) => /shadow|qemu|error/i.test(l)).slice(-8).join('\n')}`);
    });
  }

  /** Past switchovers, newest first (ListMigrations with the operator's identity). */
  async migrations(): Promise<Array<{ id: string; status: string; error: string; fencing_token: string; steps: Array<{ step: string; host_id: string; ok: boolean; error: string }> }>> {
    const op = this.pki.operator;
    const out = await this.lab.exec(this.ns.coord, process.execPath, [GRPC_CALL, 'umbra.coordinator.v1.MigrationService', 'ListMigrations', `${COORD_IP}:${COORDINATOR_PORT}`, op.ca, op.cert, op.key, 'coordinator', JSON.stringify({ vm_id: VM, limit: 20 })]);
    const r = JSON.parse(out) as AgentCallResult;
    if (r.code !== 0) throw new Error(`ListMigrations: ${r.code} ${r.details}`);
    return (r.response as { switchovers?: never[] }).switchovers ?? [];
  }

  async cleanup(): Promise<void> {
    // The daemons first: an agent still running could launch a shadow QEMU after the sweep below
    // (seen: a rollback test's hv-b shadow, launched during cleanup, outlived the run).
    const daemons = [this.coordinator, ...Object.values(this.agents)].filter((h): h is ProcessHandle => h !== undefined);
    if (this.lab) await Promise.all(daemons.map((h) => this.lab.stop(h.child, 1000).catch(() => undefined)));
    // QEMUs the agents launched outlive them: stop ours (QMP sockets under this run's dir) by PID.
    if (this.pki) await killQemusUnder(this.pki.dir);
    await this.lab?.cleanup();
    this.pki?.cleanup();
  }
}

export { pidExists };

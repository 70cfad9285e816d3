// Prediction end to end with real processes in network namespaces: three agents profile a "VM"
// each (a node process in its own cgroup v2); when the VM on hv-a starts burning CPU, hv-a's
// saturation probability rises, RankDestinations puts the idle hv-b first with reasons that say
// so, automatic mode records MIGRATION_RECOMMENDED, and bad requests are refused naming the field.
import test from 'ava';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cgroup2Mount } from '../../../agent/profiler/cgroup-stats';
import type { UmbraEvent } from '../../../shared/host-types';
import { NetnsLab, isRoot, waitFor } from '../../helpers/netns';
import { createPkiFixture, type PkiFixture } from '../../helpers/pki-fixture';
import {
  AGENT_MAIN, COORDINATOR_MAIN, COORDINATOR_PORT, GRPC_CALL, MGMT_BRIDGE, MGMT_PREFIX, UMBRACTL,
  type ProcessHandle, agentConfig, startNode, umbractlJson, waitForLog, writeYaml,
} from '../../helpers/umbra-cluster';

const COORD_IP = `${MGMT_PREFIX}.1`;
const HOSTS = ['hv-a', 'hv-b', 'hv-c'];
const MIB = 1024 * 1024;
/** Every burner exits by itself after this long, even if the test dies without cleanup. */
const LIFETIME_MS = 90_000;
const SERVICE = 'umbra.coordinator.v1.PredictionService';

interface WireForecast { peak: number; peak_upper: number }
interface VmPred { vm_id: string; host_id: string; migration_probability: number; decision: string; reasons: string[]; samples: number; cpu: WireForecast | null; destination_host: string }
interface HostPred { host_id: string; saturation_probability: number; cpu_peak_fraction: number; vm_ids: string[]; sampler_cost: { samples: number; mean_cpu_ms: number } | null }
interface Component { name: string; value: number; contribution: number; reason: string }
interface Ranked { host_id: string; rank: number; score: number; breakdown: Component[]; reasons: string[] }
interface RankJson { vm_id: string; source_host: string; ranked: Ranked[]; rejected: Array<{ host_id: string; reason: string; detail: string }>; eligible: number }

const tmp = mkdtempSync(path.join(tmpdir(), 'umbra-predict-e2e-'));
let lab: NetnsLab;
let pki: PkiFixture;
const ns: Record<string, string> = {};
const agents: Record<string, ProcessHandle> = {};
let coordinator: ProcessHandle;
const burners: ChildProcess[] = [];
const groups: string[] = [];
const mgmtIp = (h: string) => `${MGMT_PREFIX}.${11 + HOSTS.indexOf(h)}`;

/**
 * A stand-in VM process in its own cgroup. `busyShare` of every 100 ms is spent spinning (a duty
 * cycle keeps the test's load bounded on a shared machine); `waitForGo` holds it idle until a line
 * arrives on stdin.
 */
function startVm(name: string, busyShare: number, waitForGo: boolean): ChildProcess {
  const busyMs = Math.round(busyShare * 100);
  const script = `
    const spin = () => { const end = Date.now() + ${busyMs}; while (Date.now() < end) {} setTimeout(spin, ${100 - busyMs}); };
    ${busyMs === 0 ? '' : waitForGo ? "process.stdin.once('data', spin);" : 'spin();'}
    setTimeout(() => process.exit(0), ${LIFETIME_MS});`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'ignore', 'ignore'] });
  burners.push(child);
  const mount = cgroup2Mount();
  if (mount) {
    const dir = path.join(mount, `umbt-predict-${name}-${process.pid}`);
    mkdirSync(dir);
    groups.push(dir);
    writeFileSync(path.join(dir, 'cgroup.procs'), String(child.pid));
  }
  return child;
}

const ctl = <T>(args: string[]) => umbractlJson<T>(lab, ns.coord, pki.operator, COORD_IP, args);
const predictions = () => ctl<{ vms: VmPred[]; hosts: HostPred[] }>(['predictions']);
const hostPred = async (h: string) => (await predictions()).hosts.find((x) => x.host_id === h)!;

async function call(identity: 'operator' | string, method: string, request: unknown): Promise<{ code: number; details: string; response?: Record<string, unknown> }> {
  const id = identity === 'operator' ? pki.operator : pki.agent(identity);
  const out = await lab.exec(ns.coord, process.execPath, [GRPC_CALL, SERVICE, method, `${COORD_IP}:${COORDINATOR_PORT}`, id.ca, id.cert, id.key, 'coordinator', JSON.stringify(request)]);
  return JSON.parse(out);
}

if (!isRoot()) {
  test('prediction in network namespaces (needs root)', (t) => {
    t.log('skipped: needs root for network namespaces and cgroups');
    t.pass();
  });
} else {
  let busyVm: ChildProcess;

  test.before(async () => {
    pki = await createPkiFixture(HOSTS);
    lab = new NetnsLab('prd');
    await lab.start();
    ns.coord = await lab.addHost('coord');
    await lab.link(ns.coord, { bridge: MGMT_BRIDGE, ifname: 'eth0', address: `${COORD_IP}/24` });
    const coordCfg = writeYaml(path.join(pki.dir, 'coord', 'coordinator.yaml'), {
      listen: `0.0.0.0:${COORDINATOR_PORT}`,
      data_dir: path.join(pki.dir, 'coord', 'data'),
      heartbeat_interval_ms: 300,
      liveness: { suspect_after_ms: 3000, down_after_ms: 6000 },
      tls: pki.coordinator,
      // Seconds instead of minutes: 1.2 s samples, a 6 s horizon. The namespaces share one
      // machine, so its load is no host's own; a host saturates at 12% of its CPUs (0.24 of 2 cores).
      prediction: { sample_interval_minutes: 0.02, horizon_minutes: 0.1, use_host_load: false, saturation_fraction: 0.12, evaluation_interval_ms: 500 },
    });
    coordinator = startNode(lab, ns.coord, [COORDINATOR_MAIN, '--config', coordCfg]);
    await waitForLog(coordinator, /coordinator started/, 'coordinator start');

    // hv-a: idle until told, then 80% of a core; hv-b: idle; hv-c: a steady 20%.
    busyVm = startVm('busy', 0.8, true);
    const pidFile = path.join(tmp, 'vm-busy.pid');
    writeFileSync(pidFile, `${busyVm.pid}\n`);
    const vmsOf: Record<string, unknown[]> = {
      'hv-a': [{ vm_id: 'vm-busy', pidfile: pidFile, vcpus: 1, memory_bytes: 256 * MIB }],
      'hv-b': [{ vm_id: 'vm-idle', pid: startVm('idle', 0, false).pid, vcpus: 1, memory_bytes: 256 * MIB }],
      'hv-c': [{ vm_id: 'vm-mid', pid: startVm('mid', 0.2, false).pid, vcpus: 1, memory_bytes: 256 * MIB }],
    };
    for (const h of HOSTS) {
      ns[h] = await lab.addHost(h);
      await lab.link(ns[h], { bridge: MGMT_BRIDGE, ifname: 'eth0', address: `${mgmtIp(h)}/24` });
      const cfg = agentConfig(path.join(pki.dir, h), h, mgmtIp(h), COORD_IP, pki.agent(h), {
        profiler: { interval_ms: 300, batch_samples: 2, health_every: 5, vms: vmsOf[h] },
      });
      agents[h] = startNode(lab, ns[h], [AGENT_MAIN, '--config', cfg]);
    }
    for (const h of HOSTS) await waitForLog(agents[h], /profiler started/, `${h} profiler start`);
  });

  test.after.always(async () => {
    for (const c of burners) if (c.exitCode === null && c.pid) try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ }
    await lab?.cleanup();
    pki?.cleanup();
    await new Promise((r) => setTimeout(r, 200));
    for (const g of groups) try { rmdirSync(g); } catch { /* still emptying; named umbt-* for the next run */ }
    rmSync(tmp, { recursive: true, force: true });
  });

  const dump = (t: { log(...a: unknown[]): void }) => {
    t.log({ coordinator: coordinator.log.slice(-20) });
    for (const h of HOSTS) t.log({ [h]: agents[h].log.slice(-10) });
  };

  test.serial('agents report profiles: every VM is predicted on its host, with the sampler cost', async (t) => {
    const p = await waitFor('three VMs with a few samples each', async () => {
      const r = await predictions();
      return r.vms.length === 3 && r.vms.every((v) => v.samples >= 3) ? r : undefined;
    }, 30_000).catch((err) => (dump(t), Promise.reject(err)));
    t.deepEqual(Object.fromEntries(p.vms.map((v) => [v.vm_id, v.host_id])), { 'vm-busy': 'hv-a', 'vm-idle': 'hv-b', 'vm-mid': 'hv-c' });
    for (const h of p.hosts) {
      t.truthy(h.sampler_cost, `sampler cost of ${h.host_id}`);
      t.true(h.sampler_cost!.samples > 0);
      t.log(`${h.host_id}: sample cost ${h.sampler_cost!.mean_cpu_ms.toFixed(2)} ms CPU, saturation ${h.saturation_probability.toFixed(3)}`);
    }
    const a = p.hosts.find((h) => h.host_id === 'hv-a')!;
    t.deepEqual(a.vm_ids, ['vm-busy']);
    t.true(a.saturation_probability < 0.05, `hv-a before the burn: ${a.saturation_probability}`);
  });

  test.serial("a VM made busy raises its host's saturation probability; the idle host stays low", async (t) => {
    const before = await hostPred('hv-a');
    busyVm.stdin!.write('go\n');
    const after = await waitFor('hv-a saturating', async () => {
      const h = await hostPred('hv-a');
      return h.saturation_probability > 0.5 ? h : undefined;
    }, 30_000).catch((err) => (dump(t), Promise.reject(err)));
    t.log(`hv-a saturation ${before.saturation_probability.toFixed(3)} -> ${after.saturation_probability.toFixed(3)} (CPU peak ${(after.cpu_peak_fraction * 100).toFixed(0)}% of capacity)`);
    t.true(after.saturation_probability > before.saturation_probability + 0.4);
    t.true((await hostPred('hv-b')).saturation_probability < 0.05);
    // The open 1.2 s interval averages readings from before and after the start: wait for the advice to settle.
    const g = await waitFor('advice to move vm-busy', async () => {
      const r = await ctl<{ vm: VmPred; host: HostPred }>(['predictions', '--vm', 'vm-busy']);
      return r.vm.migration_probability > 0.5 ? r : undefined;
    }, 20_000).catch((err) => (dump(t), Promise.reject(err)));
    t.is(g.host.host_id, 'hv-a');
    t.true(g.vm.migration_probability > 0.5, `p(migrate) ${g.vm.migration_probability}`);
    t.true(g.vm.reasons.some((r) => /host saturation within/.test(r)), g.vm.reasons.join(' | '));
    // Not automatic yet: advice only.
    t.is(g.vm.decision, 'recommend', g.vm.reasons.join(' | '));
    t.is(g.vm.destination_host, 'hv-b');
  });

  test.serial('RankDestinations puts the idle host first, with reasons that say so; the source is rejected', async (t) => {
    const r = await ctl<RankJson>(['rank', 'vm-busy']);
    t.is(r.source_host, 'hv-a');
    t.deepEqual(r.ranked.map((d) => d.host_id), ['hv-b', 'hv-c']);
    t.deepEqual(r.rejected.map((x) => [x.host_id, x.reason]), [['hv-a', 'SOURCE_HOST']]);
    const headroom = (d: Ranked) => d.breakdown.find((c) => c.name === 'headroom')!;
    const headroomReason = (d: Ranked) => d.reasons.find((x) => /after placement at forecast peak/.test(x)) ?? '';
    const cpuFreeAfter = (d: Ranked) => Number(/(\d+)% CPU/.exec(headroomReason(d))?.[1]);
    t.log(`1. ${r.ranked[0].host_id}: ${r.ranked[0].reasons.join('; ')}`);
    t.log(`2. ${r.ranked[1].host_id}: ${r.ranked[1].reasons.join('; ')}`);
    // Present, not necessarily first: reasons come by weighted contribution, and the lab's hosts
    // share one machine's CPU, so under a loaded CI run every host's headroom shrinks and the
    // (equal) migration-cost term can outweigh it on both.
    t.regex(headroomReason(r.ranked[0]), /after placement at forecast peak: \d+% CPU .*free/, 'the first host gives its headroom as a reason');
    t.true(cpuFreeAfter(r.ranked[0]) > cpuFreeAfter(r.ranked[1]), 'the first host has more CPU free at the forecast peak');
    t.true(headroom(r.ranked[0]).value > headroom(r.ranked[1]).value);
    t.is(headroom(r.ranked[0]).reason, headroomReason(r.ranked[0]), 'the breakdown carries each sentence');
    // The table for people: ranked rows, then the rejected source with its reason.
    const text = await lab.exec(ns.coord, process.execPath, [UMBRACTL, '--coordinator', `${COORD_IP}:${COORDINATOR_PORT}`, '--ca', pki.operator.ca, '--cert', pki.operator.cert, '--key', pki.operator.key, 'rank', 'vm-busy']);
    t.regex(text, /^1\s+hv-b\s+\d\.\d{3}/m);
    t.regex(text, /^hv-a\s+SOURCE_HOST/m);
    t.regex(text, /after placement at forecast peak/);
  });

  test.serial('automatic mode records MIGRATION_RECOMMENDED with the reasons', async (t) => {
    const p = await ctl<{ automatic: boolean; threshold: number }>(['policy', 'set', '--automatic', 'true', '--threshold', '0.1']);
    t.true(p.automatic);
    t.is(p.threshold, 0.1);
    const ev = await waitFor('a recommendation event', async () => {
      const events = await ctl<UmbraEvent[]>(['events', '--limit', '1000']);
      return events.find((e) => e.kind === 'EVENT_KIND_MIGRATION_RECOMMENDED' && e.vm_id === 'vm-busy');
    }, 20_000).catch((err) => (dump(t), Promise.reject(err)));
    t.is(ev.host_id, 'hv-a');
    t.is(ev.attributes.destination_host, 'hv-b');
    t.regex(ev.attributes.reasons, /host saturation within/);
    const g = await ctl<{ vm: VmPred }>(['predictions', '--vm', 'vm-busy']);
    t.is(g.vm.decision, 'migrate');
  });

  test.serial('bad requests: INVALID_ARGUMENT names the field, NOT_FOUND for an unknown VM, agents report only their own host', async (t) => {
    const empty = await call('operator', 'GetPredictions', { vm_id: '' });
    t.is(empty.code, 3);
    t.regex(empty.details, /vm_id/);
    const unknown = await call('operator', 'RankDestinations', { vm_id: 'no-such-vm' });
    t.is(unknown.code, 5);
    t.regex(unknown.details, /no-such-vm/);
    const limit = await call('operator', 'RankDestinations', { vm_id: 'vm-busy', limit: 20_000 });
    t.is(limit.code, 3);
    t.regex(limit.details, /^limit/);
    const window = await call('operator', 'SetPolicy', { policy: { migration_windows: [{ start_minute: 2000, end_minute: 60 }] } });
    t.is(window.code, 3);
    t.regex(window.details, /policy\.migration_windows\[0\]\.start_minute/);
    const foreign = await call('hv-b', 'ReportTelemetry', { host_id: 'hv-a', vms: [] });
    t.is(foreign.code, 7);
    const badVm = await call('hv-b', 'ReportTelemetry', { host_id: 'hv-b', vms: [{ vm_id: '' }] });
    t.is(badVm.code, 3);
    t.regex(badVm.details, /vms\[0\]\.vm_id/);
    const operatorReport = await call('operator', 'ReportTelemetry', { host_id: 'hv-b' });
    t.is(operatorReport.code, 7);
  });
}

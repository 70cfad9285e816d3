import test from 'ava';
import { ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, rmdirSync, writeFileSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { cgroup2Mount } from '../../../agent/profiler/cgroup-stats';
import { ProcHostStats } from '../../../agent/profiler/proc-host-stats';
import { ProcVmStats } from '../../../agent/profiler/proc-vm-stats';
import { ProfileSampler } from '../../../agent/profiler/profile-sampler';
import { SysfsHealthSource } from '../../../agent/profiler/sysfs-health-source';
import { SysinfoHostStats } from '../../../agent/profiler/sysinfo-host-stats';
import { VmProfile } from '../../../agent/profiler/types';
import { hostSaturation } from '../../../coordinator/predict/host-saturation';
import { PredictiveRanker } from '../../../coordinator/rank/predictive-ranker';
import { HostView } from '../../../coordinator/rank/types';
import { isRoot } from '../../helpers/netns';

const children: ChildProcess[] = [];
const groups: string[] = [];
const GIB = 1024 ** 3;
/** The burner stops by itself after this long, even if the test dies without cleanup. */
const BURN_LIMIT_MS = 20_000;

function startInGroup(name: string, script: string): { child: ChildProcess; dir: string } {
  const mount = cgroup2Mount();
  if (!mount) throw new Error('no cgroup2 mount');
  const dir = path.join(mount, `umbt-${name}-${process.pid}`);
  mkdirSync(dir);
  groups.push(dir);
  // The child says "ready" once Node has started, so Node's own start-up CPU stays out of the
  // "before" window (on a loaded machine it took more than 0.1 core over the window).
  const child = spawn(process.execPath, ['-e', `process.stdout.write('ready\\n'); ${script}`], { stdio: ['pipe', 'pipe', 'ignore'] });
  children.push(child);
  writeFileSync(path.join(dir, 'cgroup.procs'), String(child.pid));
  return { child, dir };
}

function ready(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`child exited (${code}) before it was ready`)));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test.after.always(async () => {
  for (const c of children) {
    if (c.exitCode === null && c.pid) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
  await sleep(200);
  for (const g of groups) {
    try {
      rmdirSync(g);
    } catch {
      /* still emptying: retry once */
      await sleep(300);
      try {
        rmdirSync(g);
      } catch {
        /* leave it; named umbt-* for the next run */
      }
    }
  }
});

test('host sampling works on this machine (both host adapters, health reports absence)', async (t) => {
  const proc = new ProcHostStats();
  await proc.sample();
  await sleep(200);
  const s = await proc.sample();
  t.true(s.cpuCores > 0 && s.memoryTotalBytes > 0 && s.memoryUsedBytes > 0);
  t.true(s.cpuLoadPercent >= 0 && s.cpuLoadPercent <= 100);
  const si = await new SysinfoHostStats().sample();
  t.true(si.memoryTotalBytes > 0);
  t.true(Math.abs(si.memoryTotalBytes - s.memoryTotalBytes) / s.memoryTotalBytes < 0.01);
  const h = await new SysfsHealthSource({ smart: true }).read();
  t.is(typeof h.edac.present, 'boolean');
  if (!h.edac.present) t.is(h.edac.correctedErrors, undefined);
  t.log(`EDAC ${h.edac.present ? 'present' : 'absent'}, thermal ${h.thermal.present ? `max ${h.thermal.maxTemperatureC} C` : 'absent'}, SMART ${h.smart.present ? 'present' : h.smart.error}`);
});

test('a CPU-burning process in its own cgroup: its profile CPU rises, its host saturation probability rises, and the ranker puts the idle host first', async (t) => {
  if (!isRoot()) {
    t.log('skipped: needs root to create cgroups under the cgroup2 mount');
    t.pass();
    return;
  }
  if (!cgroup2Mount()) {
    t.log('skipped: no cgroup2 mount on this host');
    t.pass();
    return;
  }
  // The "busy VM" waits for a line on stdin, then burns CPU (bounded); the "idle VM" only sleeps.
  const busy = startInGroup('busy', `process.stdin.once('data', () => { const end = Date.now() + ${BURN_LIMIT_MS}; while (Date.now() < end) {} process.exit(0); }); setTimeout(() => process.exit(0), ${BURN_LIMIT_MS * 2});`);
  const idle = startInGroup('idle', `setTimeout(() => process.exit(0), ${BURN_LIMIT_MS * 2});`);
  t.truthy(readFileSync(path.join(busy.dir, 'cpu.stat'), 'utf8').includes('usage_usec'));
  await Promise.all([ready(busy.child), ready(idle.child)]);

  const sampler = new ProfileSampler({ hostId: 'lab', host: new ProcHostStats(), vms: new ProcVmStats() });
  sampler.watch({ vmId: 'busy-vm', pid: busy.child.pid!, vcpus: 1 });
  sampler.watch({ vmId: 'idle-vm', pid: idle.child.pid!, vcpus: 1 });
  const profileOf = (vms: VmProfile[], id: string) => vms.find((v) => v.vmId === id)!;

  await sampler.sampleOnce();
  await sleep(800);
  const before = await sampler.sampleOnce();
  const busyBefore = profileOf(before.vms, 'busy-vm');
  t.is(busyBefore.cpuSource, 'cgroup');

  busy.child.stdin!.write('go\n');
  await sleep(1500);
  const after = await sampler.sampleOnce();
  const busyAfter = profileOf(after.vms, 'busy-vm');
  const idleAfter = profileOf(after.vms, 'idle-vm');
  t.log(`busy VM CPU: ${busyBefore.cpuCores.toFixed(3)} -> ${busyAfter.cpuCores.toFixed(3)} cores; idle VM ${idleAfter.cpuCores.toFixed(3)} cores`);
  t.true(busyBefore.cpuCores < 0.1);
  t.true(busyAfter.cpuCores > busyBefore.cpuCores + 0.15);
  t.true(busyAfter.cpuCores > idleAfter.cpuCores + 0.15);

  // A small host holding the VM (1 core, saturated at 25%): its probability follows the VM profile.
  const demand = (p: VmProfile) => ({ vmId: p.vmId, cpuPeakCores: p.cpuCores, cpuPeakUpperCores: p.cpuCores + 0.05, memoryPeakBytes: GIB / 8, memoryPeakUpperBytes: GIB / 8 });
  const cap = { cpuCores: 1, memoryBytes: GIB };
  const satBefore = hostSaturation(cap, [demand(busyBefore)], { saturationFraction: 0.25 }).probability;
  const satAfter = hostSaturation(cap, [demand(busyAfter)], { saturationFraction: 0.25 }).probability;
  t.log(`host saturation probability: ${satBefore.toFixed(3)} -> ${satAfter.toFixed(3)}`);
  t.true(satBefore < 0.05);
  t.true(satAfter > 0.5);

  // Two candidate hosts of 2 cores: one runs the busy VM, the other the idle one.
  const hostOf = (id: string, p: VmProfile): HostView => ({
    id,
    up: true,
    cpuCapacityCores: 2,
    memoryCapacityBytes: 8 * GIB,
    cpuPeakCores: p.cpuCores,
    memoryPeakBytes: GIB,
    cpuModel: 'lab',
    cpuFlags: [],
    failureDomain: id,
    linkBandwidthBytesPerSec: 1e9,
  });
  const hosts = [hostOf('host-busy', busyAfter), hostOf('host-idle', idleAfter), hostOf('source', idleAfter)];
  const r = new PredictiveRanker().rank(
    { id: 'new-vm', sourceHostId: 'source', cpuPeakCores: 0.2, memoryPeakBytes: GIB, memorySizeBytes: GIB, dirtyRateBytesPerSec: 1e6, cpuModel: 'lab', requiredCpuFlags: [] },
    hosts,
  );
  t.is(r.ranked[0].hostId, 'host-idle');
  t.log(`rank 1 ${r.ranked[0].hostId}: ${r.ranked[0].reasons[0]}; rank 2 ${r.ranked[1].hostId}: ${r.ranked[1].reasons[0]}`);
  t.regex(r.ranked[0].reasons[0], /after placement at forecast peak: \d+% CPU/);
  t.true(r.ranked[0].breakdown.headroom.value > r.ranked[1].breakdown.headroom.value);
  sampler.close();
});

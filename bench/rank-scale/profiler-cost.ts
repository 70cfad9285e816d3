// Measures the CPU cost of one profiler sample on this host (host stats through systeminformation,
// one VM process with cgroup and link counters, health signals every sample to be pessimistic).

import { spawn } from 'node:child_process';
import { mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { cgroup2Mount } from '../../agent/profiler/cgroup-stats';
import { ProcessCpuMeter } from '../../agent/profiler/process-cpu-meter';
import { ProcVmStats } from '../../agent/profiler/proc-vm-stats';
import { ProfileSampler } from '../../agent/profiler/profile-sampler';
import { SysfsHealthSource } from '../../agent/profiler/sysfs-health-source';
import { SysinfoHostStats } from '../../agent/profiler/sysinfo-host-stats';
import { ProcHostStats } from '../../agent/profiler/proc-host-stats';
import { HostStats } from '../../agent/profiler/ports';

const SAMPLES = 40;

/** A sleeping child in its own cgroup v2 (when root), so a sample reads the cgroup files as for a QEMU guest. */
function watchedChild(): { pid: number; close: () => void; inCgroup: boolean } {
  const child = spawn('sleep', ['120'], { stdio: 'ignore' });
  const mount = cgroup2Mount();
  let dir: string | undefined;
  try {
    if (mount && process.getuid?.() === 0) {
      dir = path.join(mount, `umbt-bench-${process.pid}`);
      mkdirSync(dir);
      writeFileSync(path.join(dir, 'cgroup.procs'), String(child.pid));
    }
  } catch {
    dir = undefined;
  }
  return {
    pid: child.pid!,
    inCgroup: dir !== undefined,
    close: () => {
      child.kill('SIGKILL');
      if (dir) setTimeout(() => { try { rmdirSync(dir!); } catch { /* left for the next run's cleanup */ } }, 200).unref();
    },
  };
}

export async function measureSampleCost(hostStats: 'proc' | 'sysinfo'): Promise<{ perSampleCpuMs: number; samples: number; what: string }> {
  const host: HostStats = hostStats === 'proc' ? new ProcHostStats() : new SysinfoHostStats();
  const sampler = new ProfileSampler({
    hostId: 'bench',
    host,
    vms: new ProcVmStats(),
    health: new SysfsHealthSource({ smart: false }),
    meter: new ProcessCpuMeter(),
    healthEvery: 1,
  });
  const vm = watchedChild();
  sampler.watch({ vmId: 'guest', pid: vm.pid, vcpus: 1, tap: 'lo' });
  for (let i = 0; i < 3; i++) await sampler.sampleOnce(); // warm-up
  sampler.takeBatch();
  const meter = new ProcessCpuMeter();
  const before = meter.nowCpuMs();
  for (let i = 0; i < SAMPLES; i++) {
    await sampler.sampleOnce();
    await new Promise((r) => setTimeout(r, 20));
  }
  const total = meter.nowCpuMs() - before;
  sampler.close();
  vm.close();
  await new Promise((r) => setTimeout(r, 300));
  return { perSampleCpuMs: total / SAMPLES, samples: SAMPLES, what: `host (${hostStats}) + 1 VM (proc${vm.inCgroup ? ', own cgroup v2' : ''}, link) + EDAC/thermal` };
}

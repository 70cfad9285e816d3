// Measures the CPU cost of one profiler sample on this host (host stats through systeminformation,
// one VM process with cgroup and link counters, health signals every sample to be pessimistic).

import { ProcessCpuMeter } from '../../agent/profiler/process-cpu-meter';
import { ProcVmStats } from '../../agent/profiler/proc-vm-stats';
import { ProfileSampler } from '../../agent/profiler/profile-sampler';
import { SysfsHealthSource } from '../../agent/profiler/sysfs-health-source';
import { SysinfoHostStats } from '../../agent/profiler/sysinfo-host-stats';
import { ProcHostStats } from '../../agent/profiler/proc-host-stats';
import { HostStats } from '../../agent/profiler/ports';

const SAMPLES = 40;

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
  sampler.watch({ vmId: 'self', pid: process.pid, vcpus: 1, tap: 'lo' });
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
  return { perSampleCpuMs: total / SAMPLES, samples: SAMPLES, what: `host (${hostStats}) + 1 VM (proc, cgroup v2, link) + EDAC/thermal` };
}

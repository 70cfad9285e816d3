import test from 'ava';
import { NotFoundError } from '../../../shared/errors';
import { runsHereFrom } from '../../../agent/profiler/vm-module-view';
import { HealthSource, HostStats, VmStats } from '../../../agent/profiler/ports';
import { ProfileSampler } from '../../../agent/profiler/profile-sampler';
import {
  parseCgroup2Mount,
  parseCgroupV2Path,
  parseDiskstats,
  parseIoStat,
  parseKeyValues,
  parseMeminfo,
  parseNetDev,
  parseProcStat,
  parseProcStatCpu,
  parseSmartctlJson,
} from '../../../agent/profiler/stat-parsers';
import { HostSample, VmReading, VmTarget } from '../../../agent/profiler/types';
import { vmProfile } from '../../../agent/profiler/vm-profile';

test('/proc/PID/stat is parsed after the last parenthesis (commands may contain spaces and parentheses)', (t) => {
  const line = '4242 (qemu (x) system) S 1 4242 4242 0 -1 4194560 100 0 0 0 1500 250 0 0 20 0 3 0 1000 123456789 2048 18446744073709551615';
  t.deepEqual(parseProcStat(line), { utimeTicks: 1500, stimeTicks: 250, rssPages: 2048 });
  t.is(parseProcStat('garbage'), undefined);
  t.is(parseProcStat('1 (x) S 1 2'), undefined);
});

test('cgroup v2 path and mount are found, on unified and hybrid hosts', (t) => {
  t.is(parseCgroupV2Path('4:memory:/a\n0::/umbra/vm1\n'), '/umbra/vm1');
  t.is(parseCgroupV2Path('4:memory:/a\n'), undefined);
  const hybrid = '30 25 0:26 / /sys/fs/cgroup/unified rw,relatime shared:5 - cgroup2 cgroup2 rw\n31 25 0:27 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n';
  t.is(parseCgroup2Mount(hybrid), '/sys/fs/cgroup/unified');
  t.is(parseCgroup2Mount('31 25 0:27 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n'), undefined);
});

test('cgroup, meminfo, net/dev, diskstats and smartctl files are parsed; junk is ignored', (t) => {
  t.is(parseKeyValues('usage_usec 1234\nuser_usec 1000\nbad\n').get('usage_usec'), 1234);
  t.deepEqual(parseIoStat('8:0 rbytes=100 wbytes=50 rios=1\n8:16 rbytes=1 wbytes=2 dbytes=x\n'), { readBytes: 101, writeBytes: 52 });
  t.deepEqual(parseProcStatCpu('cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4\n'), { busy: 150, total: 1000 });
  t.is(parseMeminfo('MemTotal:       1000 kB\nMemAvailable:    250 kB\n').get('MemAvailable'), 250 * 1024);
  const dev = parseNetDev('h1\nh2\n  eth0: 100 2 0 0 0 0 0 0 200 3 0 0 0 0 0 0\n    lo: 5 1 0 0 0 0 0 0 5 1 0 0 0 0 0 0\n');
  t.deepEqual(dev.get('eth0'), { rxBytes: 100, txBytes: 200 });
  const disks = parseDiskstats('   8       0 sda 10 0 8 0 20 0 16 0 0 0 0\n   8       1 sda1 10 0 8 0 20 0 16 0 0 0 0\n   7 0 loop0 1 0 99 0 1 0 99 0 0 0 0\n');
  t.deepEqual(disks, { readBytes: 8 * 512, writeBytes: 16 * 512 });
  t.deepEqual(parseSmartctlJson('{"smart_status":{"passed":false},"ata_smart_attributes":{"table":[{"id":5,"raw":{"value":12}}]}}'), { healthy: false, reallocated: 12, pending: undefined });
  t.is(parseSmartctlJson('not json'), undefined);
});

test('a VM profile turns two readings into rates, preferring cgroup CPU, and refuses counter resets', (t) => {
  const target: VmTarget = { vmId: 'vm1', pid: 1, vcpus: 2, memoryBytes: 4096 };
  const a: VmReading = { timeMs: 0, processCpuSeconds: 10, cgroupCpuUsageUsec: 1_000_000, rssBytes: 1024, tapRxBytes: 0, tapTxBytes: 100 };
  const b: VmReading = { timeMs: 2000, processCpuSeconds: 12, cgroupCpuUsageUsec: 4_000_000, rssBytes: 2048, tapRxBytes: 4000, tapTxBytes: 50 };
  const p = vmProfile(target, a, b)!;
  t.is(p.cpuSource, 'cgroup');
  t.is(p.cpuCores, 1.5);
  t.is(p.cpuPercentOfAllocation, 75);
  t.is(p.memoryPercentOfAllocation, 50);
  t.is(p.netRxBytesPerSec, 2000);
  t.is(p.netTxBytesPerSec, undefined); // counter went down: reset, no rate
  const noCg = vmProfile(target, { ...a, cgroupCpuUsageUsec: undefined }, { ...b, cgroupCpuUsageUsec: undefined })!;
  t.is(noCg.cpuSource, 'process');
  t.is(noCg.cpuCores, 1);
  t.is(vmProfile(target, b, a), undefined);
});

class FakeHost implements HostStats {
  n = 0;
  async sample(): Promise<HostSample> {
    this.n++;
    return { timeMs: this.n * 1000, cpuLoadPercent: 10, cpuCores: 4, memoryUsedBytes: 1, memoryTotalBytes: 2, netRxBytes: 0, netTxBytes: 0, diskReadBytes: 0, diskWriteBytes: 0 };
  }
}

class FakeVms implements VmStats {
  cpuUsec = 0;
  gone = new Set<number>();
  t = 0;
  async read(target: VmTarget): Promise<VmReading> {
    if (this.gone.has(target.pid)) throw new NotFoundError('process', String(target.pid));
    this.t += 1000;
    this.cpuUsec += 500_000;
    return { timeMs: this.t, cgroupCpuUsageUsec: this.cpuUsec };
  }
}

test('the sampler derives profiles from the second reading on, batches, reads health every N samples and drops vanished VMs', async (t) => {
  const vms = new FakeVms();
  let healthReads = 0;
  const health: HealthSource = {
    read: async () => {
      healthReads++;
      return { timeMs: 0, edac: { present: false }, thermal: { present: false }, smart: { present: false } };
    },
  };
  let cpu = 0;
  const sampler = new ProfileSampler({ hostId: 'h1', host: new FakeHost(), vms, health, healthEvery: 2, meter: { nowCpuMs: () => (cpu += 0.5) } });
  sampler.watch({ vmId: 'vm1', pid: 10, vcpus: 1 });
  const first = await sampler.sampleOnce();
  t.is(first.vms.length, 0);
  const second = await sampler.sampleOnce();
  t.is(second.vms.length, 1);
  t.is(second.vms[0].cpuCores, 0.5);
  t.is(second.vms[0].dirtyRateBytesPerSec, undefined);
  sampler.noteDirtyRate('vm1', 4e6);
  t.is((await sampler.sampleOnce()).vms[0].dirtyRateBytesPerSec, 4e6);
  t.is(healthReads, 2);
  vms.gone.add(10);
  await sampler.sampleOnce();
  const batch = sampler.takeBatch();
  t.is(batch.host.length, 4);
  t.is(batch.vms.length, 2);
  t.is(batch.health.length, 2);
  t.is(batch.cost.samples, 4);
  t.is(batch.cost.meanCpuMs, 0.5);
  t.is(sampler.takeBatch().host.length, 0);
  // The vanished VM is no longer watched.
  vms.gone.clear();
  t.is((await sampler.sampleOnce()).vms.length, 0);
  sampler.close();
});

test('a VM that does not run its guest here (paused source, shadow) is not profiled; back to running, it starts from a fresh reading', async (t) => {
  const vms = new FakeVms();
  let here = true;
  const sampler = new ProfileSampler({ hostId: 'h1', host: new FakeHost(), vms, runsHere: async () => (id) => id !== 'vm1' || here });
  sampler.watch({ vmId: 'vm1', pid: 10, vcpus: 1 });
  await sampler.sampleOnce();
  t.is((await sampler.sampleOnce()).vms.length, 1);
  here = false;
  t.is((await sampler.sampleOnce()).vms.length, 0);
  here = true;
  t.is((await sampler.sampleOnce()).vms.length, 0, 'first reading after the pause gives no delta');
  t.is((await sampler.sampleOnce()).vms.length, 1);
  sampler.close();
});

test('the vm module view: only a local QEMU in the running state runs here; unknown VMs count as running', (t) => {
  const runsHere = runsHereFrom([
    { vmId: 'moved', role: 'local', status: 'postmigrate' },
    { vmId: 'paused', role: 'local', status: 'paused' },
    { vmId: 'incoming', role: 'shadow', status: 'inmigrate' },
    { vmId: 'live', role: 'local', status: 'running' },
    { vmId: 'both', role: 'shadow', status: 'inmigrate' },
    { vmId: 'both', role: 'local', status: 'running' },
  ]);
  t.deepEqual(['moved', 'paused', 'incoming', 'live', 'both', 'pidfile-only'].map(runsHere), [false, false, false, true, true, true]);
});

// VmStats over /proc, cgroup v2 and /sys/class/net: everything the profiler reads for one VM process.

import { cgroupDirOfPid, readCgroupCounters } from './cgroup-stats';
import { VmStats } from './ports';
import { readProcessStat } from './proc-stats';
import { readLinkCounters } from './tap-counters';
import { VmReading, VmTarget } from './types';

export class ProcVmStats implements VmStats {
  /** cgroup directory per pid (a process rarely changes cgroup; re-resolved when its files vanish). */
  private readonly dirs = new Map<number, string | undefined>();

  async read(target: VmTarget): Promise<VmReading> {
    const timeMs = Date.now();
    const proc = readProcessStat(target.pid);
    if (!this.dirs.has(target.pid)) this.dirs.set(target.pid, cgroupDirOfPid(target.pid));
    const dir = this.dirs.get(target.pid);
    const cg = dir ? readCgroupCounters(dir) : {};
    if (dir && cg.cpuUsageUsec === undefined) this.dirs.delete(target.pid);
    const tap = target.tap ? readLinkCounters(target.tap) : {};
    return {
      timeMs,
      processCpuSeconds: proc?.cpuSeconds,
      rssBytes: proc?.rssBytes,
      // The root cgroup has no cpu.stat usage of its own worth using: only a process in its own group.
      cgroupCpuUsageUsec: cg.cpuUsageUsec,
      cgroupMemoryCurrentBytes: cg.memoryCurrentBytes,
      cgroupIoReadBytes: cg.ioReadBytes,
      cgroupIoWriteBytes: cg.ioWriteBytes,
      tapRxBytes: tap.rxBytes,
      tapTxBytes: tap.txBytes,
      tapRxPackets: tap.rxPackets,
      tapTxPackets: tap.txPackets,
    };
  }

  forget(pid: number): void {
    this.dirs.delete(pid);
  }
}

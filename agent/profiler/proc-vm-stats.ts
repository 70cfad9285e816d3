// VmStats over /proc, cgroup v2 and /sys/class/net: everything the profiler reads for one VM process.

import { cgroup2Mount, cgroupDirOfPid, readCgroupCounters } from './cgroup-stats';
import { readOr } from './pseudo-file';
import { VmStats } from './ports';
import { readProcessStat } from './proc-stats';
import { readLinkCounters } from './tap-counters';
import { VmReading, VmTarget } from './types';

export class ProcVmStats implements VmStats {
  /** cgroup directory per pid (a process rarely changes cgroup; re-resolved when its files vanish). */
  private readonly dirs = new Map<number, string | undefined>();

  /**
   * The process's own cgroup, or undefined when it shares one (the root, or a group with other
   * processes): a shared group's counters would be someone else's load, so /proc figures serve then.
   */
  private ownCgroup(pid: number): string | undefined {
    const dir = cgroupDirOfPid(pid);
    if (!dir || dir === cgroup2Mount()) return undefined;
    const procs = readOr(`${dir}/cgroup.procs`, '').split('\n').filter((l) => l.trim() !== '');
    return procs.length === 1 && procs[0].trim() === String(pid) ? dir : undefined;
  }

  async read(target: VmTarget): Promise<VmReading> {
    const timeMs = Date.now();
    const proc = readProcessStat(target.pid);
    if (!this.dirs.has(target.pid)) this.dirs.set(target.pid, this.ownCgroup(target.pid));
    const dir = this.dirs.get(target.pid);
    const cg = dir ? readCgroupCounters(dir) : {};
    if (dir && cg.cpuUsageUsec === undefined) this.dirs.delete(target.pid);
    const tap = target.tap ? readLinkCounters(target.tap) : {};
    return {
      timeMs,
      processCpuSeconds: proc?.cpuSeconds,
      rssBytes: proc?.rssBytes,
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

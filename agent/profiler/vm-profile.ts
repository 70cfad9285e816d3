// Turns two cumulative readings of a VM into a profile of rates (CPU cores, I/O and network bytes
// per second). Counter resets or a changed process give no rate rather than a wrong one. Pure logic.

import { VmProfile, VmReading, VmTarget } from './types';

function rate(a: number | undefined, b: number | undefined, seconds: number): number | undefined {
  if (a === undefined || b === undefined || seconds <= 0 || b < a) return undefined;
  return (b - a) / seconds;
}

export function vmProfile(target: VmTarget, prev: VmReading, cur: VmReading): VmProfile | undefined {
  const intervalMs = cur.timeMs - prev.timeMs;
  if (intervalMs <= 0) return undefined;
  const s = intervalMs / 1000;
  let cpuCores: number | undefined;
  let cpuSource: VmProfile['cpuSource'] = 'none';
  const cg = rate(prev.cgroupCpuUsageUsec, cur.cgroupCpuUsageUsec, s);
  if (cg !== undefined) {
    cpuCores = cg / 1e6;
    cpuSource = 'cgroup';
  } else {
    const p = rate(prev.processCpuSeconds, cur.processCpuSeconds, s);
    if (p !== undefined) {
      cpuCores = p;
      cpuSource = 'process';
    }
  }
  const memory = cur.cgroupMemoryCurrentBytes ?? cur.rssBytes;
  return {
    vmId: target.vmId,
    timeMs: cur.timeMs,
    intervalMs,
    cpuCores: cpuCores ?? 0,
    cpuPercentOfAllocation: ((cpuCores ?? 0) / Math.max(1, target.vcpus)) * 100,
    memoryBytes: memory,
    memoryPercentOfAllocation: memory !== undefined && target.memoryBytes ? (memory / target.memoryBytes) * 100 : undefined,
    ioReadBytesPerSec: rate(prev.cgroupIoReadBytes, cur.cgroupIoReadBytes, s),
    ioWriteBytesPerSec: rate(prev.cgroupIoWriteBytes, cur.cgroupIoWriteBytes, s),
    netRxBytesPerSec: rate(prev.tapRxBytes, cur.tapRxBytes, s),
    netTxBytesPerSec: rate(prev.tapTxBytes, cur.tapTxBytes, s),
    dirtyRateBytesPerSec: cur.dirtyRateBytesPerSec,
    cpuSource,
  };
}

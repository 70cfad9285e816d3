// HostStats read straight from /proc (stat, meminfo, net/dev, diskstats): the low-cost sampler,
// about a tenth of systeminformation's CPU per sample on these hosts (see bench/rank-scale).

import * as os from 'node:os';
import { HostStats } from './ports';
import { readOr } from './pseudo-file';
import { parseDiskstats, parseMeminfo, parseNetDev, parseProcStatCpu } from './stat-parsers';
import { HostSample } from './types';

export class ProcHostStats implements HostStats {
  private prevCpu: { busy: number; total: number } | undefined;
  private readonly cores = os.cpus().length;

  /** `interfaces`: uplinks to count; default every interface except loopback. */
  constructor(private readonly interfaces?: readonly string[]) {}

  async sample(): Promise<HostSample> {
    const cpu = parseProcStatCpu(readOr('/proc/stat', ''));
    let load = 0;
    if (cpu && this.prevCpu && cpu.total > this.prevCpu.total) load = (100 * (cpu.busy - this.prevCpu.busy)) / (cpu.total - this.prevCpu.total);
    if (cpu) this.prevCpu = cpu;
    const mem = parseMeminfo(readOr('/proc/meminfo', ''));
    const total = mem.get('MemTotal') ?? 0;
    let rx = 0;
    let tx = 0;
    for (const [name, c] of parseNetDev(readOr('/proc/net/dev', ''))) {
      if (this.interfaces ? !this.interfaces.includes(name) : name === 'lo') continue;
      rx += c.rxBytes;
      tx += c.txBytes;
    }
    const disk = parseDiskstats(readOr('/proc/diskstats', ''));
    return {
      timeMs: Date.now(),
      cpuLoadPercent: load,
      cpuCores: this.cores,
      memoryUsedBytes: total - (mem.get('MemAvailable') ?? total),
      memoryTotalBytes: total,
      netRxBytes: rx,
      netTxBytes: tx,
      diskReadBytes: disk.readBytes,
      diskWriteBytes: disk.writeBytes,
    };
  }
}

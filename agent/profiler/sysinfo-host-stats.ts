// HostStats through systeminformation: CPU load, memory, network and disk I/O counters.
// (Temperatures come from thermal-zones.ts: systeminformation's cpuTemperature spawns helpers
// and costs ~15 ms of CPU per call, over the sampling budget.)

import * as os from 'node:os';
import si from 'systeminformation';
import { HostStats } from './ports';
import { HostSample } from './types';

export class SysinfoHostStats implements HostStats {
  private ifaces: string | undefined;

  /** `interfaces`: the uplinks to count (default: the default-route interface, resolved once). */
  constructor(private readonly interfaces?: readonly string[]) {}

  async sample(): Promise<HostSample> {
    this.ifaces ??= this.interfaces?.length ? this.interfaces.join(',') : await si.networkInterfaceDefault();
    const [load, mem, nets, fs] = await Promise.all([si.currentLoad(), si.mem(), si.networkStats(this.ifaces), si.fsStats().catch(() => undefined)]);
    let rx = 0;
    let tx = 0;
    for (const n of nets) {
      if (n.iface === 'lo') continue;
      rx += n.rx_bytes || 0;
      tx += n.tx_bytes || 0;
    }
    return {
      timeMs: Date.now(),
      cpuLoadPercent: load.currentLoad,
      cpuCores: os.cpus().length,
      memoryUsedBytes: mem.active,
      memoryTotalBytes: mem.total,
      netRxBytes: rx,
      netTxBytes: tx,
      diskReadBytes: fs?.rx ?? 0,
      diskWriteBytes: fs?.wx ?? 0,
    };
  }
}

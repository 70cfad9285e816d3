// CpuMeter of this process: own CPU time plus that of reaped children (helpers such as smartctl
// spawned by a sample count towards its cost).

import { readFileSync } from 'node:fs';
import { CLOCK_TICKS_PER_SEC } from './proc-stats';
import { CpuMeter } from './ports';

export class ProcessCpuMeter implements CpuMeter {
  nowCpuMs(): number {
    const u = process.cpuUsage();
    let children = 0;
    try {
      const text = readFileSync('/proc/self/stat', 'utf8');
      const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
      children = ((Number(f[13]) + Number(f[14])) * 1000) / CLOCK_TICKS_PER_SEC;
    } catch {
      /* not Linux: own time only */
    }
    return (u.user + u.system) / 1000 + (Number.isFinite(children) ? children : 0);
  }
}

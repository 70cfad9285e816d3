// Host CPU utilisation from /proc/stat between two reads: the share of time not idle, which
// unlike the load average does not count tasks blocked on I/O or waiting in line.
import { readFileSync } from 'node:fs';

interface CpuTimes {
  busy: number;
  total: number;
}

function readCpuTimes(): CpuTimes | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest times are already in user/nice)
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    const total = v.slice(0, 8).reduce((a, b) => a + (b || 0), 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

export class ProcCpuUsage {
  private last = readCpuTimes();

  /** Busy share of all CPUs since the previous call, 0..1; 0 when /proc/stat is unreadable. */
  sample(): number {
    const now = readCpuTimes();
    const prev = this.last;
    this.last = now;
    if (!now || !prev || now.total <= prev.total) return 0;
    return Math.min(1, Math.max(0, (now.busy - prev.busy) / (now.total - prev.total)));
  }
}

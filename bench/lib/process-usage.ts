// Reads a process tree's resident memory and CPU time from /proc, for footprint benchmarks.
import { readFileSync, readdirSync } from 'node:fs';

const CLOCK_TICKS_PER_S = 100; // USER_HZ on Linux

export interface ProcessUsage {
  rssBytes: number;
  cpuSeconds: number;
}

function children(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid) out.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** RSS and CPU seconds (user + system) of `pid` and all its descendants. */
export function processTreeUsage(pid: number): ProcessUsage {
  let rssBytes = 0;
  let cpuSeconds = 0;
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop()!;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      cpuSeconds += (Number(f[11]) + Number(f[12])) / CLOCK_TICKS_PER_S;
      const status = readFileSync(`/proc/${p}/status`, 'utf8');
      const m = /VmRSS:\s+(\d+) kB/.exec(status);
      if (m) rssBytes += Number(m[1]) * 1024;
    } catch {
      continue;
    }
    stack.push(...children(p));
  }
  return { rssBytes, cpuSeconds };
}

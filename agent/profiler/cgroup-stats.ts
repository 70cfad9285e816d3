// Reads the cgroup v2 counters of a process (cpu.stat, memory.current, io.stat). Files a kernel or
// controller setup does not provide are reported absent.

import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { parseCgroup2Mount, parseCgroupV2Path, parseIntegerFile, parseIoStat, parseKeyValues } from './stat-parsers';

export interface CgroupCounters {
  cpuUsageUsec?: number;
  memoryCurrentBytes?: number;
  ioReadBytes?: number;
  ioWriteBytes?: number;
}

let mountPromise: Promise<string | undefined> | undefined;

/** Where cgroup2 is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid hosts). */
export function cgroup2Mount(): Promise<string | undefined> {
  mountPromise ??= readFile('/proc/self/mountinfo', 'utf8').then(parseCgroup2Mount, () => undefined);
  return mountPromise;
}

async function optional(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** The cgroup v2 directory of a process, or undefined. */
export async function cgroupDirOfPid(pid: number): Promise<string | undefined> {
  const mount = await cgroup2Mount();
  const text = await optional(`/proc/${pid}/cgroup`);
  const rel = text === undefined ? undefined : parseCgroupV2Path(text);
  return mount && rel ? path.join(mount, rel) : undefined;
}

export async function readCgroupCounters(dir: string): Promise<CgroupCounters> {
  const [cpu, mem, io] = await Promise.all([optional(path.join(dir, 'cpu.stat')), optional(path.join(dir, 'memory.current')), optional(path.join(dir, 'io.stat'))]);
  const out: CgroupCounters = {};
  if (cpu !== undefined) out.cpuUsageUsec = parseKeyValues(cpu).get('usage_usec');
  if (mem !== undefined) out.memoryCurrentBytes = parseIntegerFile(mem);
  if (io !== undefined) {
    const s = parseIoStat(io);
    out.ioReadBytes = s.readBytes;
    out.ioWriteBytes = s.writeBytes;
  }
  return out;
}

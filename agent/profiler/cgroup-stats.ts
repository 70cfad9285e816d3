// Reads the cgroup v2 counters of a process (cpu.stat, memory.current, io.stat). Files a kernel or
// controller setup does not provide are reported absent.

import * as path from 'node:path';
import { readOr } from './pseudo-file';
import { parseCgroup2Mount, parseCgroupV2Path, parseIntegerFile, parseIoStat, parseKeyValues } from './stat-parsers';

export interface CgroupCounters {
  cpuUsageUsec?: number;
  memoryCurrentBytes?: number;
  ioReadBytes?: number;
  ioWriteBytes?: number;
}

let mount: { dir: string | undefined } | undefined;

/** Where cgroup2 is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid hosts). */
export function cgroup2Mount(): string | undefined {
  if (!mount) {
    const text = readOr('/proc/self/mountinfo', undefined);
    mount = { dir: text === undefined ? undefined : parseCgroup2Mount(text) };
  }
  return mount.dir;
}

const optional = (file: string) => readOr(file, undefined);

/** The cgroup v2 directory of a process, or undefined. */
export function cgroupDirOfPid(pid: number): string | undefined {
  const mount = cgroup2Mount();
  const text = optional(`/proc/${pid}/cgroup`);
  const rel = text === undefined ? undefined : parseCgroupV2Path(text);
  return mount && rel ? path.join(mount, rel) : undefined;
}

export function readCgroupCounters(dir: string): CgroupCounters {
  const cpu = optional(path.join(dir, 'cpu.stat'));
  const mem = optional(path.join(dir, 'memory.current'));
  const io = optional(path.join(dir, 'io.stat'));
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

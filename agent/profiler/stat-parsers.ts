// Parsers of the kernel's text files the profiler reads (/proc/PID/stat, /proc/PID/cgroup,
// mountinfo, cgroup v2 cpu.stat and io.stat, EDAC and thermal values). Malformed input gives
// undefined, never an exception. Pure logic.

export interface ProcStat {
  utimeTicks: number;
  stimeTicks: number;
  rssPages: number;
}

/** /proc/PID/stat: the command may contain spaces and parentheses, so fields start after the last ')'. */
export function parseProcStat(text: string): ProcStat | undefined {
  const end = text.lastIndexOf(')');
  if (end < 0) return undefined;
  const f = text.slice(end + 2).trim().split(/\s+/);
  // After "pid (comm) ": f[0] = state (field 3); utime is field 14, stime 15, rss 24.
  const utime = Number(f[11]);
  const stime = Number(f[12]);
  const rss = Number(f[21]);
  if (![utime, stime, rss].every(Number.isFinite)) return undefined;
  return { utimeTicks: utime, stimeTicks: stime, rssPages: rss };
}

/** The cgroup v2 path of a process ("0::/path"), from /proc/PID/cgroup. */
export function parseCgroupV2Path(text: string): string | undefined {
  for (const line of text.split('\n')) if (line.startsWith('0::')) return line.slice(3).trim() || '/';
  return undefined;
}

/** Mount point of the cgroup2 filesystem, from /proc/self/mountinfo. */
export function parseCgroup2Mount(mountinfo: string): string | undefined {
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const after = line.slice(sep + 3).split(' ');
    if (after[0] === 'cgroup2') return line.slice(0, sep).split(' ')[4];
  }
  return undefined;
}

/** "key value" lines (cpu.stat, memory.stat). */
export function parseKeyValues(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    const n = Number(v);
    if (k && v !== undefined && Number.isFinite(n)) out.set(k, n);
  }
  return out;
}

/** io.stat: "MAJ:MIN rbytes=.. wbytes=.. rios=.." per device, summed. */
export function parseIoStat(text: string): { readBytes: number; writeBytes: number } {
  let readBytes = 0;
  let writeBytes = 0;
  for (const line of text.split('\n')) {
    for (const kv of line.trim().split(/\s+/).slice(1)) {
      const [k, v] = kv.split('=');
      const n = Number(v);
      if (!Number.isFinite(n)) continue;
      if (k === 'rbytes') readBytes += n;
      else if (k === 'wbytes') writeBytes += n;
    }
  }
  return { readBytes, writeBytes };
}

/** A single integer file (counters, millidegrees). */
export function parseIntegerFile(text: string): number | undefined {
  const t = text.trim();
  if (!/^-?\d+$/.test(t)) return undefined;
  return Number(t);
}

/** smartctl -j output: overall health and the two attributes that predict failure best. */
export function parseSmartctlJson(text: string): { healthy?: boolean; reallocated?: number; pending?: number } | undefined {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof j !== 'object' || j === null) return undefined;
  const o = j as { smart_status?: { passed?: boolean }; ata_smart_attributes?: { table?: Array<{ id?: number; raw?: { value?: number } }> } };
  const table = o.ata_smart_attributes?.table ?? [];
  const attr = (id: number) => table.find((a) => a.id === id)?.raw?.value;
  return { healthy: o.smart_status?.passed, reallocated: attr(5), pending: attr(197) };
}

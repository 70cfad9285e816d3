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

/** /proc/stat first line: cumulative busy and total jiffies of all CPUs. */
export function parseProcStatCpu(text: string): { busy: number; total: number } | undefined {
  const line = text.slice(0, text.indexOf('\n'));
  const f = line.trim().split(/\s+/);
  if (f[0] !== 'cpu') return undefined;
  const v = f.slice(1, 9).map(Number);
  if (v.length < 4 || !v.every(Number.isFinite)) return undefined;
  const total = v.reduce((a, b) => a + b, 0);
  const idle = v[3] + (v[4] ?? 0); // idle + iowait
  return { busy: total - idle, total };
}

/** /proc/meminfo values in bytes (the file says kB). */
export function parseMeminfo(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(\w+(?:\(\w+\))?):\s+(\d+)(?:\s+kB)?$/.exec(line.trim());
    if (m) out.set(m[1], Number(m[2]) * (line.includes('kB') ? 1024 : 1));
  }
  return out;
}

/** /proc/net/dev: rx/tx bytes per interface. */
export function parseNetDev(text: string): Map<string, { rxBytes: number; txBytes: number }> {
  const out = new Map<string, { rxBytes: number; txBytes: number }>();
  for (const line of text.split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const f = line.slice(colon + 1).trim().split(/\s+/).map(Number);
    if (f.length >= 9 && Number.isFinite(f[0]) && Number.isFinite(f[8])) out.set(line.slice(0, colon).trim(), { rxBytes: f[0], txBytes: f[8] });
  }
  return out;
}

/** /proc/diskstats: bytes read and written by whole disks (partitions and virtual devices skipped). */
export function parseDiskstats(text: string): { readBytes: number; writeBytes: number } {
  let readBytes = 0;
  let writeBytes = 0;
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const name = f[2];
    if (/^(loop|ram|dm-|sr|zram)/.test(name) || /^(sd[a-z]+|vd[a-z]+|xvd[a-z]+|hd[a-z]+)\d+$/.test(name) || /^nvme\d+n\d+p\d+$/.test(name)) continue;
    readBytes += Number(f[5]) * 512;
    writeBytes += Number(f[9]) * 512;
  }
  return { readBytes, writeBytes };
}

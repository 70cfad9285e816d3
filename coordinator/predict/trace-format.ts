// Parses one trace file of the gcd-vms format: one line per 5-minute sample, "cpu% mem%".
// Malformed lines are counted and dropped, never thrown. Pure logic.

export interface TraceSeries {
  /** File name without extension, e.g. vm_1297383150_1. */
  id: string;
  /** Series that must stay on the same side of a fit/evaluate split (the job of vm_<job>_<task>). */
  group: string;
  cpu: Float64Array;
  mem: Float64Array;
}

export interface ParsedTrace {
  series: TraceSeries;
  malformedLines: number;
}

/** vm_<job>_<task> -> <job>; other names are their own group. */
export function groupOfTraceId(id: string): string {
  const m = /^vm_(\d+)_\d+$/.exec(id);
  return m ? m[1] : id;
}

export function parseTrace(id: string, text: string): ParsedTrace {
  const cpu: number[] = [];
  const mem: number[] = [];
  let malformed = 0;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const parts = line.split(/\s+/);
    const c = Number(parts[0]);
    const m = parts.length > 1 ? Number(parts[1]) : NaN;
    if (parts.length < 1 || parts.length > 2 || !Number.isFinite(c) || c < 0 || (parts.length === 2 && (!Number.isFinite(m) || m < 0))) {
      malformed++;
      continue;
    }
    cpu.push(c);
    mem.push(Number.isFinite(m) ? m : 0);
  }
  return {
    series: { id, group: groupOfTraceId(id), cpu: Float64Array.from(cpu), mem: Float64Array.from(mem) },
    malformedLines: malformed,
  };
}

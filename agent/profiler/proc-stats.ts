// Reads a process's CPU time and RSS from /proc/PID/stat.

import { readFileSync } from 'node:fs';
import { NotFoundError } from '../../shared/errors';
import { parseProcStat } from './stat-parsers';

/** USER_HZ: the unit of utime/stime in /proc (100 on every Linux ABI we run on). */
export const CLOCK_TICKS_PER_SEC = 100;
export const PAGE_SIZE_BYTES = 4096;

export function readProcessStat(pid: number): { cpuSeconds: number; rssBytes: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (err) {
    throw new NotFoundError('process', String(pid), { cause: err });
  }
  const s = parseProcStat(text);
  if (!s) return undefined;
  return { cpuSeconds: (s.utimeTicks + s.stimeTicks) / CLOCK_TICKS_PER_SEC, rssBytes: s.rssPages * PAGE_SIZE_BYTES };
}

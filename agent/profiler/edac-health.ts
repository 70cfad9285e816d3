// EDAC memory-controller error counters under /sys/devices/system/edac/mc (absent -> reported absent).

import { readdirSync } from 'node:fs';
import { readOr } from './pseudo-file';
import { parseIntegerFile } from './stat-parsers';

export const EDAC_MC_DIR = '/sys/devices/system/edac/mc';

export function readEdac(dir = EDAC_MC_DIR): { present: boolean; correctedErrors?: number; uncorrectedErrors?: number; controllers?: number } {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => /^mc\d+$/.test(n));
  } catch {
    return { present: false };
  }
  if (names.length === 0) return { present: false };
  let ce = 0;
  let ue = 0;
  for (const n of names) {
    ce += parseIntegerFile(readOr(`${dir}/${n}/ce_count`, '')) ?? 0;
    ue += parseIntegerFile(readOr(`${dir}/${n}/ue_count`, '')) ?? 0;
  }
  return { present: true, correctedErrors: ce, uncorrectedErrors: ue, controllers: names.length };
}

// EDAC memory-controller error counters under /sys/devices/system/edac/mc (absent -> reported absent).

import { readdir, readFile } from 'node:fs/promises';
import { parseIntegerFile } from './stat-parsers';

export const EDAC_MC_DIR = '/sys/devices/system/edac/mc';

export async function readEdac(dir = EDAC_MC_DIR): Promise<{ present: boolean; correctedErrors?: number; uncorrectedErrors?: number; controllers?: number }> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => /^mc\d+$/.test(n));
  } catch {
    return { present: false };
  }
  if (names.length === 0) return { present: false };
  let ce = 0;
  let ue = 0;
  for (const n of names) {
    ce += parseIntegerFile(await readFile(`${dir}/${n}/ce_count`, 'utf8').catch(() => '')) ?? 0;
    ue += parseIntegerFile(await readFile(`${dir}/${n}/ue_count`, 'utf8').catch(() => '')) ?? 0;
  }
  return { present: true, correctedErrors: ce, uncorrectedErrors: ue, controllers: names.length };
}

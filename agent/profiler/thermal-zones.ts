// Temperatures from /sys/class/thermal/thermal_zone*/temp (millidegrees C).

import { readdir, readFile } from 'node:fs/promises';
import { parseIntegerFile } from './stat-parsers';

export const THERMAL_DIR = '/sys/class/thermal';

export async function readThermalZones(dir = THERMAL_DIR): Promise<{ present: boolean; maxTemperatureC?: number; zones?: Array<{ name: string; temperatureC: number }> }> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.startsWith('thermal_zone'));
  } catch {
    return { present: false };
  }
  const zones: Array<{ name: string; temperatureC: number }> = [];
  for (const n of names) {
    const milli = parseIntegerFile(await readFile(`${dir}/${n}/temp`, 'utf8').catch(() => ''));
    if (milli === undefined) continue;
    const type = (await readFile(`${dir}/${n}/type`, 'utf8').catch(() => n)).trim();
    zones.push({ name: type, temperatureC: milli / 1000 });
  }
  if (zones.length === 0) return { present: false };
  return { present: true, maxTemperatureC: Math.max(...zones.map((z) => z.temperatureC)), zones };
}

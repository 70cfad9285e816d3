// Temperatures from /sys/class/thermal/thermal_zone*/temp (millidegrees C).

import { readdirSync } from 'node:fs';
import { readOr } from './pseudo-file';
import { parseIntegerFile } from './stat-parsers';

export const THERMAL_DIR = '/sys/class/thermal';

export function readThermalZones(dir = THERMAL_DIR): { present: boolean; maxTemperatureC?: number; zones?: Array<{ name: string; temperatureC: number }> } {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.startsWith('thermal_zone'));
  } catch {
    return { present: false };
  }
  const zones: Array<{ name: string; temperatureC: number }> = [];
  for (const n of names) {
    const milli = parseIntegerFile(readOr(`${dir}/${n}/temp`, ''));
    if (milli === undefined) continue;
    const type = (readOr(`${dir}/${n}/type`, n)).trim();
    zones.push({ name: type, temperatureC: milli / 1000 });
  }
  if (zones.length === 0) return { present: false };
  return { present: true, maxTemperatureC: Math.max(...zones.map((z) => z.temperatureC)), zones };
}

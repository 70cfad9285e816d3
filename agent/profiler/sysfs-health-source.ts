// HealthSource over sysfs (EDAC, thermal zones) and smartctl; SMART is read less often because
// each read spawns smartctl.

import { readEdac } from './edac-health';
import { HealthSource } from './ports';
import { readSmart } from './smartctl-health';
import { readThermalZones } from './thermal-zones';
import { HealthSignals } from './types';

export const SMART_EVERY_N_READS = 60;

export class SysfsHealthSource implements HealthSource {
  private reads = 0;
  private lastSmart: HealthSignals['smart'] = { present: false, error: 'not read yet' };

  constructor(private readonly options: { smart?: boolean } = {}) {}

  async read(): Promise<HealthSignals> {
    const edac = readEdac();
    const thermal = readThermalZones();
    if (this.options.smart !== false && this.reads % SMART_EVERY_N_READS === 0) this.lastSmart = await readSmart();
    this.reads++;
    return { timeMs: Date.now(), edac, thermal, smart: this.lastSmart };
  }
}

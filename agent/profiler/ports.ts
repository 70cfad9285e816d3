// Ports of the profiler (owned here, implemented by the OS adapters, faked in tests).

import { HealthSignals, HostSample, VmReading, VmTarget } from './types';

export interface HostStats {
  sample(): Promise<HostSample>;
}

export interface VmStats {
  /** Reads the VM's cumulative counters; throws NotFoundError when the process is gone. */
  read(target: VmTarget): Promise<VmReading>;
}

export interface HealthSource {
  read(): Promise<HealthSignals>;
}

/** Measures the CPU time this process (and its reaped children) used, in ms. */
export interface CpuMeter {
  nowCpuMs(): number;
}

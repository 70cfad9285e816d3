// Probability that a host saturates (CPU or memory demand reaching its capacity) within the
// horizon, from the peak forecasts and intervals of the VMs it holds. Pure logic.

import { normalCdf } from './holt-winters-forecaster';
import { Forecast } from './time-series';

/** z of the 90% quantile: turns an 80% interval's upper half-width into a standard deviation. */
const Z90 = 1.2816;
/** Assumed correlation between the VMs' peaks (co-located VMs often peak together). */
export const DEFAULT_PEAK_CORRELATION = 0.3;
/** Demand share of capacity that counts as saturated. */
export const DEFAULT_SATURATION_FRACTION = 1.0;

/** One VM's forecast peak demand in absolute units, with the upper end of its 80% interval. */
export interface VmDemandForecast {
  vmId: string;
  cpuPeakCores: number;
  cpuPeakUpperCores: number;
  memoryPeakBytes: number;
  memoryPeakUpperBytes: number;
}

export interface HostCapacity {
  cpuCores: number;
  memoryBytes: number;
}

export interface HostSaturation {
  probability: number;
  cpuProbability: number;
  memoryProbability: number;
  /** Expected peak demand / capacity. */
  cpuPeakFraction: number;
  memoryPeakFraction: number;
  /** Expected demand above the saturation level (0 when below), in cores and bytes. */
  cpuExcessCores: number;
  memoryExcessBytes: number;
}

/** A VM's demand from forecasts in percent of its allocation (the trace unit). */
export function vmDemandFromForecasts(vmId: string, cpu: Forecast, vcpus: number, memory: Forecast | undefined, memoryBytes: number): VmDemandForecast {
  return {
    vmId,
    cpuPeakCores: (cpu.peak / 100) * vcpus,
    cpuPeakUpperCores: (cpu.peakUpper / 100) * vcpus,
    memoryPeakBytes: memory ? (memory.peak / 100) * memoryBytes : memoryBytes,
    memoryPeakUpperBytes: memory ? (memory.peakUpper / 100) * memoryBytes : memoryBytes,
  };
}

function exceedProbability(means: number[], sigmas: number[], limit: number, rho: number): number {
  const mu = means.reduce((a, b) => a + b, 0);
  const sumSigma = sigmas.reduce((a, b) => a + b, 0);
  const sumSq = sigmas.reduce((a, b) => a + b * b, 0);
  const variance = sumSq + rho * (sumSigma * sumSigma - sumSq);
  if (variance <= 1e-12) return mu >= limit ? 1 : 0;
  return 1 - normalCdf((limit - mu) / Math.sqrt(variance));
}

export function hostSaturation(
  capacity: HostCapacity,
  vms: readonly VmDemandForecast[],
  options: { correlation?: number; saturationFraction?: number; baseCpuCores?: number; baseMemoryBytes?: number } = {},
): HostSaturation {
  const rho = options.correlation ?? DEFAULT_PEAK_CORRELATION;
  const level = options.saturationFraction ?? DEFAULT_SATURATION_FRACTION;
  const cpuMeans = [options.baseCpuCores ?? 0, ...vms.map((v) => v.cpuPeakCores)];
  const cpuSig = [0, ...vms.map((v) => Math.max(0, v.cpuPeakUpperCores - v.cpuPeakCores) / Z90)];
  const memMeans = [options.baseMemoryBytes ?? 0, ...vms.map((v) => v.memoryPeakBytes)];
  const memSig = [0, ...vms.map((v) => Math.max(0, v.memoryPeakUpperBytes - v.memoryPeakBytes) / Z90)];
  const cpuP = capacity.cpuCores > 0 ? exceedProbability(cpuMeans, cpuSig, capacity.cpuCores * level, rho) : 1;
  const memP = capacity.memoryBytes > 0 ? exceedProbability(memMeans, memSig, capacity.memoryBytes * level, rho) : 1;
  const cpuSum = cpuMeans.reduce((a, b) => a + b, 0);
  const memSum = memMeans.reduce((a, b) => a + b, 0);
  return {
    probability: 1 - (1 - cpuP) * (1 - memP),
    cpuProbability: cpuP,
    memoryProbability: memP,
    cpuPeakFraction: capacity.cpuCores > 0 ? cpuSum / capacity.cpuCores : Infinity,
    memoryPeakFraction: capacity.memoryBytes > 0 ? memSum / capacity.memoryBytes : Infinity,
    cpuExcessCores: Math.max(0, cpuSum - capacity.cpuCores * level),
    memoryExcessBytes: Math.max(0, memSum - capacity.memoryBytes * level),
  };
}

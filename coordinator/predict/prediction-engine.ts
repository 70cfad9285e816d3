// The coordinator's predictor state: per-VM utilization series (agent profiles averaged into
// 5-minute samples, the unit the models were fitted and evaluated on), host health history, and
// the questions the API asks: forecast a VM, a host's saturation probability and failure risk,
// a VM's anomaly score. Pure logic; the gRPC layer feeds it and reads from it.

import { anomalyScore, AnomalyScore } from './anomaly';
import { FailureRisk, HealthSnapshot, hostFailureRisk } from './failure-risk';
import { HostCapacity, hostSaturation, HostSaturation, vmDemandFromForecasts, VmDemandForecast } from './host-saturation';
import { DEFAULT_HORIZON_MINUTES, DEFAULT_SAMPLE_INTERVAL_MINUTES, Forecast, Forecaster, horizonSteps } from './time-series';
import { WindowQuantileForecaster } from './window-quantile-forecaster';

/** Two days of 5-minute samples per VM. */
export const MAX_SERIES_SAMPLES = 576;
/** Health snapshots kept per host (trend window). */
export const MAX_HEALTH_SNAPSHOTS = 120;

export interface EngineOptions {
  horizonMinutes?: number;
  sampleIntervalMinutes?: number;
  /** The forecaster used (e.g. a fitted GlobalBoostedForecaster); default: the local window-quantile model. */
  forecaster?: Forecaster;
}

interface Bucket {
  index: number;
  cpuSum: number;
  memSum: number;
  n: number;
}

interface VmSeries {
  cpu: number[];
  mem: number[];
  open?: Bucket;
  /** Bumped by every reading taken: a cached forecast of an older version is stale. */
  version: number;
}

export interface VmForecast {
  vmId: string;
  samples: number;
  cpu: Forecast;
  memory: Forecast;
}

export class PredictionEngine {
  readonly horizonMinutes: number;
  readonly steps: number;
  private readonly intervalMs: number;
  private forecaster: Forecaster;
  private readonly vms = new Map<string, VmSeries>();
  private readonly health = new Map<string, HealthSnapshot[]>();
  /**
   * The last forecast per VM, until its next reading or another forecaster. Ranking one VM reads
   * every other VM's demand (what each host holds), so an advice round over the fleet asked for
   * each forecast once per VM ranked.
   */
  private readonly forecasts = new Map<string, { version: number; forecaster: Forecaster; value: VmForecast }>();

  constructor(options: EngineOptions = {}) {
    this.horizonMinutes = options.horizonMinutes ?? DEFAULT_HORIZON_MINUTES;
    const interval = options.sampleIntervalMinutes ?? DEFAULT_SAMPLE_INTERVAL_MINUTES;
    this.steps = horizonSteps(this.horizonMinutes, interval);
    this.intervalMs = interval * 60_000;
    this.forecaster = options.forecaster ?? new WindowQuantileForecaster();
  }

  /** Changes whenever a forecast, a host's health or the VM set may have changed (for callers' caches). */
  get generation(): number {
    return this.generationValue;
  }
  private generationValue = 0;

  setForecaster(f: Forecaster): void {
    this.forecaster = f;
    this.generationValue++;
  }

  /** One profile reading (percent of the VM's allocation); readings are averaged per interval. */
  recordVmSample(vmId: string, timeMs: number, cpuPercent: number, memoryPercent: number): boolean {
    if (![timeMs, cpuPercent, memoryPercent].every(Number.isFinite) || cpuPercent < 0 || memoryPercent < 0) return false;
    let s = this.vms.get(vmId);
    if (!s) {
      s = { cpu: [], mem: [], version: 0 };
      this.vms.set(vmId, s);
    }
    const index = Math.floor(timeMs / this.intervalMs);
    if (s.open && index < s.open.index) return false; // late reading for a closed interval
    if (s.open && index > s.open.index) this.close(s);
    s.open ??= { index, cpuSum: 0, memSum: 0, n: 0 };
    s.open.cpuSum += cpuPercent;
    s.open.memSum += memoryPercent;
    s.open.n++;
    s.version++;
    this.generationValue++;
    return true;
  }

  private close(s: VmSeries): void {
    if (!s.open || s.open.n === 0) return;
    s.cpu.push(s.open.cpuSum / s.open.n);
    s.mem.push(s.open.memSum / s.open.n);
    if (s.cpu.length > MAX_SERIES_SAMPLES) {
      s.cpu.splice(0, s.cpu.length - MAX_SERIES_SAMPLES);
      s.mem.splice(0, s.mem.length - MAX_SERIES_SAMPLES);
    }
    s.open = undefined;
  }

  forgetVm(vmId: string): void {
    this.vms.delete(vmId);
    this.forecasts.delete(vmId);
    this.generationValue++;
  }

  /** The VM's series including the interval still open (so a new VM is forecast at once). */
  private series(vmId: string): { cpu: number[]; mem: number[] } | undefined {
    const s = this.vms.get(vmId);
    if (!s) return undefined;
    if (!s.open) return s;
    return { cpu: [...s.cpu, s.open.cpuSum / s.open.n], mem: [...s.mem, s.open.memSum / s.open.n] };
  }

  /** The VM's forecast (the same object until its next reading: callers must not change it). */
  forecastVm(vmId: string): VmForecast | undefined {
    const version = this.vms.get(vmId)?.version;
    const hit = this.forecasts.get(vmId);
    if (hit && hit.version === version && hit.forecaster === this.forecaster) return hit.value;
    const s = this.series(vmId);
    if (version === undefined || !s || s.cpu.length === 0) return undefined;
    const cpu = this.forecaster.forecast(s.cpu, this.steps, { memory: s.mem });
    // Memory moves slowly and was not the evaluated target: the local model serves it.
    const memory = new WindowQuantileForecaster().forecast(s.mem, this.steps);
    const value = { vmId, samples: s.cpu.length, cpu, memory };
    this.forecasts.set(vmId, { version, forecaster: this.forecaster, value });
    return value;
  }

  anomaly(vmId: string): AnomalyScore {
    const s = this.series(vmId);
    return s ? anomalyScore(s.cpu) : { z: 0, score: 0 };
  }

  /** Forecast demand of a VM in cores and bytes; a VM with no samples counts at its full allocation. */
  demand(vm: { vmId: string; vcpus: number; memoryBytes: number }): VmDemandForecast {
    const f = this.forecastVm(vm.vmId);
    if (!f) return { vmId: vm.vmId, cpuPeakCores: vm.vcpus, cpuPeakUpperCores: vm.vcpus, memoryPeakBytes: vm.memoryBytes, memoryPeakUpperBytes: vm.memoryBytes };
    return vmDemandFromForecasts(vm.vmId, f.cpu, vm.vcpus, f.memory, vm.memoryBytes);
  }

  hostSaturation(capacity: HostCapacity, vms: ReadonlyArray<{ vmId: string; vcpus: number; memoryBytes: number }>, options?: Parameters<typeof hostSaturation>[2]): HostSaturation {
    return hostSaturation(capacity, vms.map((v) => this.demand(v)), options);
  }

  recordHealth(hostId: string, snapshot: HealthSnapshot): void {
    const list = this.health.get(hostId) ?? [];
    list.push(snapshot);
    if (list.length > MAX_HEALTH_SNAPSHOTS) list.splice(0, list.length - MAX_HEALTH_SNAPSHOTS);
    this.health.set(hostId, list);
    this.generationValue++;
  }

  hostFailureRisk(hostId: string): FailureRisk {
    return hostFailureRisk(this.health.get(hostId) ?? []);
  }
}

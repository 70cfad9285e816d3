// The agent's profiler loop: samples the host, every watched VM and the health signals at a
// configurable interval, derives VM profiles from consecutive readings, batches them for the
// coordinator and measures its own CPU cost per sample. Talks to the OS only through ports.

import { errorMessage, isUmbraError } from '../../shared/errors';
import { CpuMeter, HealthSource, HostStats, VmStats } from './ports';
import { HealthSignals, HostSample, ProfileBatch, VmProfile, VmReading, VmTarget } from './types';
import { vmProfile } from './vm-profile';

export const DEFAULT_SAMPLE_INTERVAL_MS = 5_000;
export const DEFAULT_BATCH_SAMPLES = 12;
/** Health signals change slowly: read them every N samples. */
export const DEFAULT_HEALTH_EVERY = 12;
const MAX_BUFFERED_SAMPLES = 1_000;

export interface ProfileSamplerOptions {
  hostId: string;
  host: HostStats;
  vms: VmStats;
  health?: HealthSource;
  meter?: CpuMeter;
  intervalMs?: number;
  batchSamples?: number;
  healthEvery?: number;
  /** Receives each full batch (the coordinator client); errors are logged by the caller's callback. */
  onBatch?: (batch: ProfileBatch) => void | Promise<void>;
  onError?: (err: unknown) => void;
  /**
   * Asked before each sample: which watched VMs run their guest here now. A VM left out (a paused
   * source copy after a switchover, a shadow) is not profiled, so the coordinator does not see it
   * on two hosts; its next profile starts from a fresh reading.
   */
  runsHere?: () => Promise<(vmId: string) => boolean>;
}

export interface SampleResult {
  host: HostSample;
  vms: VmProfile[];
  health?: HealthSignals;
  cpuMs: number;
}

export class ProfileSampler {
  private readonly targets = new Map<string, VmTarget>();
  private readonly last = new Map<string, VmReading>();
  private readonly dirtyRates = new Map<string, number>();
  private hostBuf: HostSample[] = [];
  private vmBuf: VmProfile[] = [];
  private healthBuf: HealthSignals[] = [];
  private costs: number[] = [];
  private malformed = 0;
  private samples = 0;
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(private readonly o: ProfileSamplerOptions) {}

  watch(target: VmTarget): void {
    this.targets.set(target.vmId, target);
    this.last.delete(target.vmId);
  }

  /** The dirty-page rate measured by memory shadowing (when active); reported with the VM's next profile. */
  noteDirtyRate(vmId: string, bytesPerSec: number): void {
    if (Number.isFinite(bytesPerSec) && bytesPerSec >= 0) this.dirtyRates.set(vmId, bytesPerSec);
  }

  unwatch(vmId: string): void {
    this.dirtyRates.delete(vmId);
    this.targets.delete(vmId);
    this.last.delete(vmId);
  }

  /** Takes one sample now; VM profiles appear from the second reading of a VM on. */
  async sampleOnce(): Promise<SampleResult> {
    const before = this.o.meter?.nowCpuMs() ?? 0;
    const host = await this.o.host.sample();
    const runsHere = this.o.runsHere ? await this.o.runsHere().catch(() => undefined) : undefined;
    const vms: VmProfile[] = [];
    for (const t of this.targets.values()) {
      if (runsHere && !runsHere(t.vmId)) {
        this.last.delete(t.vmId);
        continue;
      }
      try {
        const reading = await this.o.vms.read(t);
        const dirty = this.dirtyRates.get(t.vmId);
        if (dirty !== undefined) reading.dirtyRateBytesPerSec = dirty;
        const prev = this.last.get(t.vmId);
        this.last.set(t.vmId, reading);
        const p = prev ? vmProfile(t, prev, reading) : undefined;
        if (p) vms.push(p);
      } catch (err) {
        if (isUmbraError(err) && err.reason === 'NOT_FOUND') this.unwatch(t.vmId);
        else this.malformed++;
        this.o.onError?.(err);
      }
    }
    const every = this.o.healthEvery ?? DEFAULT_HEALTH_EVERY;
    const health = this.o.health && this.samples % every === 0 ? await this.o.health.read() : undefined;
    this.samples++;
    const cpuMs = (this.o.meter?.nowCpuMs() ?? 0) - before;
    this.costs.push(cpuMs);
    this.hostBuf.push(host);
    this.vmBuf.push(...vms);
    if (health) this.healthBuf.push(health);
    if (this.hostBuf.length > MAX_BUFFERED_SAMPLES) this.hostBuf.splice(0, this.hostBuf.length - MAX_BUFFERED_SAMPLES);
    return { host, vms, health, cpuMs };
  }

  /** Hands the buffered samples over (and clears them). */
  takeBatch(): ProfileBatch {
    const c = this.costs;
    const batch: ProfileBatch = {
      hostId: this.o.hostId,
      host: this.hostBuf,
      vms: this.vmBuf,
      health: this.healthBuf,
      cost: { samples: c.length, meanCpuMs: c.length ? c.reduce((a, b) => a + b, 0) / c.length : 0, maxCpuMs: c.length ? Math.max(...c) : 0 },
      malformed: this.malformed,
    };
    this.hostBuf = [];
    this.vmBuf = [];
    this.healthBuf = [];
    this.costs = [];
    this.malformed = 0;
    return batch;
  }

  start(): void {
    if (this.timer) return;
    const interval = this.o.intervalMs ?? DEFAULT_SAMPLE_INTERVAL_MS;
    this.timer = setInterval(() => void this.tick(), interval);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    if (this.running) return; // a slow sample is skipped, not stacked
    this.running = true;
    try {
      await this.sampleOnce();
      if (this.hostBuf.length >= (this.o.batchSamples ?? DEFAULT_BATCH_SAMPLES) && this.o.onBatch) await this.o.onBatch(this.takeBatch());
    } catch (err) {
      this.o.onError?.(new Error(`profiler sample failed: ${errorMessage(err)}`, { cause: err }));
    } finally {
      this.running = false;
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

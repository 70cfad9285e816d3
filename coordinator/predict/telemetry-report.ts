// A ReportTelemetry request turned into the predictor's vocabulary: structural mistakes are
// INVALID_ARGUMENT naming the field; readings with impossible values are counted and dropped.
// Pure logic.

import { InvalidArgumentError } from '../../shared/errors';
import { HealthSnapshot } from './failure-risk';

export const MAX_HOST_SAMPLES = 2_000;
export const MAX_VM_PROFILES = 50_000;
export const MAX_HEALTH_SAMPLES = 500;
const MAX_VM_ID_LENGTH = 256;
export const MAX_VM_GPUS = 16;
const MAX_GPU_MODEL_LENGTH = 256;

export interface HostReading {
  timeMs: number;
  cpuBusyCores: number;
  cpuCores: number;
  memoryUsedBytes: number;
  memoryTotalBytes: number;
}

export interface VmReport {
  vmId: string;
  timeMs: number;
  cpuCores: number;
  cpuPercent: number;
  vcpus: number;
  memoryBytes: number;
  /** The VM's configured memory; falls back to what it uses when unknown. */
  memoryAllocationBytes: number;
  memoryPercent: number;
  dirtyRateBytesPerSec: number;
  /** GPU models passed through to the guest, one per device (absent: none). */
  gpuModels?: string[];
}

export interface SamplerCost {
  samples: number;
  meanCpuMs: number;
  maxCpuMs: number;
}

export interface TelemetryReport {
  hostId: string;
  host: HostReading[];
  vms: VmReport[];
  health: HealthSnapshot[];
  cost: SamplerCost;
  /** Malformed at the agent plus dropped here. */
  dropped: number;
}

type Msg = Record<string, unknown>;

const n = (v: unknown): number => (typeof v === 'number' ? v : typeof v === 'string' && v !== '' ? Number(v) : NaN);
const okNonNeg = (...xs: number[]) => xs.every((x) => Number.isFinite(x) && x >= 0);

function list(field: string, v: unknown, max: number): Msg[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new InvalidArgumentError(field, 'must be a list');
  if (v.length > max) throw new InvalidArgumentError(field, `at most ${max} entries per report, got ${v.length}`);
  return v as Msg[];
}

function gpuModels(field: string, v: unknown): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new InvalidArgumentError(field, 'must be a list');
  if (v.length > MAX_VM_GPUS) throw new InvalidArgumentError(field, `at most ${MAX_VM_GPUS} devices per VM, got ${v.length}`);
  return v.map((m, k) => {
    if (typeof m !== 'string' || m.length === 0 || m.length > MAX_GPU_MODEL_LENGTH) throw new InvalidArgumentError(`${field}[${k}]`, `must be a string of 1-${MAX_GPU_MODEL_LENGTH} characters`);
    return m;
  });
}

export function parseTelemetryReport(hostId: string, req: Msg): TelemetryReport {
  let dropped = Number.isFinite(n(req.malformed)) ? Math.max(0, n(req.malformed)) : 0;
  const host: HostReading[] = [];
  for (const s of list('host', req.host, MAX_HOST_SAMPLES)) {
    const r = { timeMs: n(s.time_unix_ms), load: n(s.cpu_load_percent), cores: n(s.cpu_cores), used: n(s.memory_used_bytes), total: n(s.memory_total_bytes) };
    if (!okNonNeg(r.timeMs, r.load, r.cores, r.used, r.total) || r.load > 100.5) {
      dropped++;
      continue;
    }
    host.push({ timeMs: r.timeMs, cpuBusyCores: (r.load / 100) * r.cores, cpuCores: r.cores, memoryUsedBytes: r.used, memoryTotalBytes: r.total });
  }
  const vms: VmReport[] = [];
  list('vms', req.vms, MAX_VM_PROFILES).forEach((p, i) => {
    const vmId = p.vm_id;
    if (typeof vmId !== 'string' || vmId.length === 0 || vmId.length > MAX_VM_ID_LENGTH) throw new InvalidArgumentError(`vms[${i}].vm_id`, `must be a string of 1-${MAX_VM_ID_LENGTH} characters`);
    const timeMs = n(p.time_unix_ms);
    const cpuCores = n(p.cpu_cores);
    const cpuPercent = n(p.cpu_percent_of_allocation);
    const vcpus = n(p.vcpus);
    const memoryBytes = n(p.memory_bytes ?? 0);
    const alloc = n(p.memory_allocation_bytes ?? 0);
    const dirty = n(p.dirty_rate_bytes_per_sec ?? 0);
    const gpus = gpuModels(`vms[${i}].gpu_models`, p.gpu_models);
    if (!okNonNeg(timeMs, cpuCores, cpuPercent, memoryBytes, alloc, dirty) || !(vcpus >= 1)) {
      dropped++;
      return;
    }
    const allocation = alloc > 0 ? alloc : memoryBytes;
    vms.push({ vmId, timeMs, cpuCores, cpuPercent, vcpus, memoryBytes, memoryAllocationBytes: allocation, memoryPercent: allocation > 0 ? (100 * memoryBytes) / allocation : 0, dirtyRateBytesPerSec: dirty, ...(gpus.length ? { gpuModels: gpus } : {}) });
  });
  const health: HealthSnapshot[] = [];
  for (const h of list('health', req.health, MAX_HEALTH_SAMPLES)) {
    const timeMs = n(h.time_unix_ms);
    if (!okNonNeg(timeMs)) {
      dropped++;
      continue;
    }
    const snap: HealthSnapshot = { timeMs };
    if (h.has_edac === true) {
      snap.edacCorrected = n(h.edac_corrected_errors);
      snap.edacUncorrected = n(h.edac_uncorrected_errors);
    }
    if (h.has_thermal === true) snap.maxTemperatureC = n(h.max_temperature_c);
    if (h.has_smart === true) {
      snap.smartHealthy = h.smart_healthy === true;
      snap.smartReallocatedSectors = n(h.smart_reallocated_sectors);
      snap.smartPendingSectors = n(h.smart_pending_sectors);
    }
    if (Object.values(snap).some((v) => typeof v === 'number' && !Number.isFinite(v))) {
      dropped++;
      continue;
    }
    health.push(snap);
  }
  const c = (req.cost ?? {}) as Msg;
  const cost = { samples: n(c.samples ?? 0), meanCpuMs: n(c.mean_cpu_ms ?? 0), maxCpuMs: n(c.max_cpu_ms ?? 0) };
  return { hostId, host, vms, health, cost: okNonNeg(cost.samples, cost.meanCpuMs, cost.maxCpuMs) ? cost : { samples: 0, meanCpuMs: 0, maxCpuMs: 0 }, dropped };
}

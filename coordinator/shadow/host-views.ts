// What the ranker sees of registered hosts and of a VM whose demand is not profiled yet. Pure.
import type { HostRecord } from '../../shared/host-types';
import type { HostView, VmView } from '../rank/types';

/** Used until the VM's telemetry arrives (a later issue): a small VM. */
export const DEFAULT_VM_CPU_CORES = 1;
export const DEFAULT_VM_MEMORY_BYTES = 512 * 1024 * 1024;
/** Link speed assumed when a host reports none (10 GbE). */
const DEFAULT_LINK_BYTES_PER_SEC = 1.25e9;
const BYTES_PER_MBIT = 125_000;

/**
 * `useHostLoad` false ranks on capacity alone: for hosts whose reported usage is not their own
 * (lab namespaces sharing one machine report that machine's load average).
 */
export function hostViewOf(h: HostRecord, useHostLoad = true): HostView {
  const c = h.facts.capacity;
  const fastestMbps = Math.max(0, ...c.nics.map((n) => n.speed_mbps));
  return {
    id: h.facts.host_id,
    up: h.state === 'HOST_STATE_UP',
    cpuCapacityCores: c.cpu_threads,
    memoryCapacityBytes: c.memory_bytes,
    cpuPeakCores: useHostLoad ? h.usage.cpu_load_ratio * c.cpu_threads : 0,
    memoryPeakBytes: useHostLoad ? h.usage.memory_used_bytes : 0,
    cpuModel: c.cpu_model,
    cpuFamily: c.cpu_vendor,
    cpuFlags: c.cpu_flags,
    freeGpuModels: c.gpu_models,
    failureDomain: h.facts.failure_domain,
    linkBandwidthBytesPerSec: fastestMbps > 0 ? fastestMbps * BYTES_PER_MBIT : DEFAULT_LINK_BYTES_PER_SEC,
  };
}

export function vmViewOf(vmId: string, source: HostRecord | undefined, sourceHostId: string): VmView {
  return {
    id: vmId,
    sourceHostId,
    cpuPeakCores: DEFAULT_VM_CPU_CORES,
    memoryPeakBytes: DEFAULT_VM_MEMORY_BYTES,
    memorySizeBytes: DEFAULT_VM_MEMORY_BYTES,
    dirtyRateBytesPerSec: 0,
    cpuModel: source?.facts.capacity.cpu_model ?? '',
    ...(source ? { cpuFamily: source.facts.capacity.cpu_vendor } : {}),
    requiredCpuFlags: [],
  };
}

// A profiler batch in the shape of umbra.coordinator.v1.ReportTelemetryRequest. Pure.

import { ProfileBatch, VmTarget } from './types';

/** `targetOf` supplies what the profile itself does not carry: vCPUs, configured memory, GPUs. */
export function batchToWire(batch: ProfileBatch, targetOf: (vmId: string) => Pick<VmTarget, 'vcpus' | 'memoryBytes' | 'gpuModels'> | undefined) {
  return {
    host_id: batch.hostId,
    host: batch.host.map((s) => ({
      time_unix_ms: String(s.timeMs),
      cpu_load_percent: s.cpuLoadPercent,
      cpu_cores: s.cpuCores,
      memory_used_bytes: String(Math.round(s.memoryUsedBytes)),
      memory_total_bytes: String(Math.round(s.memoryTotalBytes)),
      net_rx_bytes: String(Math.round(s.netRxBytes)),
      net_tx_bytes: String(Math.round(s.netTxBytes)),
      disk_read_bytes: String(Math.round(s.diskReadBytes)),
      disk_write_bytes: String(Math.round(s.diskWriteBytes)),
    })),
    vms: batch.vms.map((p) => {
      const t = targetOf(p.vmId);
      return {
        vm_id: p.vmId,
        time_unix_ms: String(p.timeMs),
        interval_ms: Math.round(p.intervalMs),
        cpu_cores: p.cpuCores,
        cpu_percent_of_allocation: p.cpuPercentOfAllocation,
        vcpus: t?.vcpus ?? 1,
        memory_bytes: String(Math.round(p.memoryBytes ?? 0)),
        memory_allocation_bytes: String(Math.round(t?.memoryBytes ?? 0)),
        io_read_bytes_per_sec: p.ioReadBytesPerSec ?? 0,
        io_write_bytes_per_sec: p.ioWriteBytesPerSec ?? 0,
        net_rx_bytes_per_sec: p.netRxBytesPerSec ?? 0,
        net_tx_bytes_per_sec: p.netTxBytesPerSec ?? 0,
        dirty_rate_bytes_per_sec: p.dirtyRateBytesPerSec ?? 0,
        cpu_source: p.cpuSource,
        gpu_models: t?.gpuModels ?? [],
      };
    }),
    health: batch.health.map((h) => ({
      time_unix_ms: String(h.timeMs),
      has_edac: h.edac.present && h.edac.correctedErrors !== undefined,
      edac_corrected_errors: String(h.edac.correctedErrors ?? 0),
      edac_uncorrected_errors: String(h.edac.uncorrectedErrors ?? 0),
      has_thermal: h.thermal.present && h.thermal.maxTemperatureC !== undefined,
      max_temperature_c: h.thermal.maxTemperatureC ?? 0,
      has_smart: h.smart.present && h.smart.healthy !== undefined,
      smart_healthy: h.smart.healthy ?? false,
      smart_reallocated_sectors: String(h.smart.reallocatedSectors ?? 0),
      smart_pending_sectors: String(h.smart.pendingSectors ?? 0),
    })),
    cost: { samples: batch.cost.samples, mean_cpu_ms: batch.cost.meanCpuMs, max_cpu_ms: batch.cost.maxCpuMs },
    malformed: batch.malformed,
  };
}

// Vocabulary of the agent profiler: raw readings from the OS adapters, the per-VM profile derived
// from two readings, host health signals, and the batch sent to the coordinator.

export interface HostSample {
  timeMs: number;
  cpuLoadPercent: number;
  cpuCores: number;
  memoryUsedBytes: number;
  memoryTotalBytes: number;
  /** Cumulative counters across interfaces / disks. */
  netRxBytes: number;
  netTxBytes: number;
  diskReadBytes: number;
  diskWriteBytes: number;
}

/** Cumulative counters of one VM process (QEMU or any process), read at timeMs. */
export interface VmReading {
  timeMs: number;
  /** utime + stime of the process, seconds. */
  processCpuSeconds?: number;
  rssBytes?: number;
  /** cgroup v2 of the process: absent files are absent fields. */
  cgroupCpuUsageUsec?: number;
  cgroupMemoryCurrentBytes?: number;
  cgroupIoReadBytes?: number;
  cgroupIoWriteBytes?: number;
  tapRxBytes?: number;
  tapTxBytes?: number;
  tapRxPackets?: number;
  tapTxPackets?: number;
  /** Bytes dirtied per second, when memory shadowing tracks it. */
  dirtyRateBytesPerSec?: number;
}

/** Rates over the interval between two readings. */
export interface VmProfile {
  vmId: string;
  timeMs: number;
  intervalMs: number;
  /** Cores busy on average over the interval. */
  cpuCores: number;
  /** Percent of the VM's vCPU allocation (the unit of the traces). */
  cpuPercentOfAllocation: number;
  memoryBytes?: number;
  memoryPercentOfAllocation?: number;
  ioReadBytesPerSec?: number;
  ioWriteBytesPerSec?: number;
  netRxBytesPerSec?: number;
  netTxBytesPerSec?: number;
  dirtyRateBytesPerSec?: number;
  /** Which source the CPU figure came from. */
  cpuSource: 'cgroup' | 'process' | 'none';
}

export interface HealthSignals {
  timeMs: number;
  edac: { present: boolean; correctedErrors?: number; uncorrectedErrors?: number; controllers?: number };
  thermal: { present: boolean; maxTemperatureC?: number; zones?: Array<{ name: string; temperatureC: number }> };
  smart: { present: boolean; healthy?: boolean; reallocatedSectors?: number; pendingSectors?: number; devices?: number; error?: string };
}

export interface ProfileBatch {
  hostId: string;
  host: HostSample[];
  vms: VmProfile[];
  health: HealthSignals[];
  /** Sampling cost figures, so the coordinator can see the agent's overhead. */
  cost: { samples: number; meanCpuMs: number; maxCpuMs: number };
  malformed: number;
}

/** What the sampler watches for one VM. */
export interface VmTarget {
  vmId: string;
  pid: number;
  vcpus: number;
  memoryBytes?: number;
  /** Tap interface of the guest NIC, if any. */
  tap?: string;
  /** GPU models passed through to the guest (vfio-pci), once read from its command line. */
  gpuModels?: string[];
}

// Public surface of the agent profiler: the sampler, its ports and the OS adapters that fill them.

export { ProfileSampler, ProfileSamplerOptions, SampleResult, DEFAULT_SAMPLE_INTERVAL_MS } from './profile-sampler';
export { HostStats, VmStats, HealthSource, CpuMeter } from './ports';
export { ProcHostStats } from './proc-host-stats';
export { SysinfoHostStats } from './sysinfo-host-stats';
export { ProcVmStats } from './proc-vm-stats';
export { SysfsHealthSource } from './sysfs-health-source';
export { ProcessCpuMeter } from './process-cpu-meter';
export * from './types';

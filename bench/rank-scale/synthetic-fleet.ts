// A deterministic synthetic fleet for the ranking benchmark: hosts of a few CPU generations in
// failure domains, VMs with flags, some GPUs and keep-apart groups.

import { HostView, VmView } from '../../coordinator/rank/types';

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const GIB = 1024 ** 3;
const BASE_FLAGS = ['sse4_2', 'avx', 'avx2', 'aes', 'pclmulqdq', 'rdrand', 'fma', 'bmi2', 'x2apic', 'hypervisor'];
const GENERATIONS = [
  { model: 'EPYC-7543', family: 'AMD Zen3', extra: ['sha_ni', 'vaes'] },
  { model: 'EPYC-9354', family: 'AMD Zen4', extra: ['sha_ni', 'vaes', 'avx512f', 'avx512bw'] },
  { model: 'Xeon-6338', family: 'Intel Icelake', extra: ['avx512f', 'avx512bw', 'vaes'] },
  { model: 'Xeon-4214', family: 'Intel Cascadelake', extra: ['avx512f'] },
];

export function syntheticFleet(hostCount: number, vmCount: number, seed = 42): { hosts: HostView[]; vms: VmView[] } {
  const r = rng(seed);
  const hosts: HostView[] = [];
  for (let i = 0; i < hostCount; i++) {
    const g = GENERATIONS[i % GENERATIONS.length];
    const cap = 64 + 32 * Math.floor(r() * 3);
    hosts.push({
      id: `host-${i}`,
      up: r() > 0.01,
      cpuCapacityCores: cap,
      memoryCapacityBytes: cap * 8 * GIB,
      cpuPeakCores: cap * r() * 0.95,
      memoryPeakBytes: cap * 8 * GIB * r() * 0.9,
      cpuModel: g.model,
      cpuFamily: g.family,
      cpuFlags: [...BASE_FLAGS, ...g.extra],
      freeGpuModels: i % 20 === 0 ? ['A100'] : [],
      failureDomain: `rack-${i % 40}`,
      groups: [`app-${Math.floor(r() * 500)}`, `app-${Math.floor(r() * 500)}`],
      linkBandwidthBytesPerSec: i % 3 === 0 ? 1.25e9 : 3.125e9,
      failureRisk: r() * 0.05,
    });
  }
  const vms: VmView[] = [];
  for (let i = 0; i < vmCount; i++) {
    const g = GENERATIONS[Math.floor(r() * GENERATIONS.length)];
    const mem = (2 + Math.floor(r() * 30)) * GIB;
    vms.push({
      id: `vm-${i}`,
      sourceHostId: `host-${Math.floor(r() * hostCount)}`,
      cpuPeakCores: 1 + r() * 8,
      memoryPeakBytes: mem * (0.5 + r() * 0.5),
      memorySizeBytes: mem,
      dirtyRateBytesPerSec: r() * 2e8,
      cpuModel: g.model,
      cpuFamily: g.family,
      requiredCpuFlags: r() < 0.3 ? [...BASE_FLAGS, ...g.extra] : BASE_FLAGS.slice(0, 6),
      gpuModels: i % 200 === 0 ? ['A100'] : [],
      keepApartGroups: [`app-${Math.floor(r() * 500)}`],
      keepTogetherGroups: r() < 0.2 ? [`app-${Math.floor(r() * 500)}`] : [],
      requireOtherFailureDomain: r() < 0.5,
    });
  }
  return { hosts, vms };
}

// Gathers the host's capacity with systeminformation (CPU model and flags, memory, GPUs, kernel)
// and the NICs from the kernel (nic-facts.ts). Done once at start and on re-registration; never on
// the heartbeat path.
import si from 'systeminformation';
import type { HostCapacity } from '../../shared/host-types';
import { probeNics } from './nic-facts';

export async function probeHostCapacity(): Promise<HostCapacity> {
  const [cpu, flags, mem, osInfo, nics, graphics] = await Promise.all([
    si.cpu(),
    si.cpuFlags(),
    si.mem(),
    si.osInfo(),
    probeNics(),
    si.graphics().catch(() => ({ controllers: [] as Array<{ model: string; vendor: string }> })),
  ]);
  return {
    cpu_cores: cpu.physicalCores || cpu.cores,
    cpu_threads: cpu.cores,
    cpu_vendor: cpu.manufacturer || cpu.vendor || '',
    cpu_model: [cpu.manufacturer, cpu.brand].filter(Boolean).join(' ').trim(),
    cpu_flags: flags.split(/\s+/).filter(Boolean).sort(),
    memory_bytes: mem.total,
    gpu_models: graphics.controllers.map((c) => [c.vendor, c.model].filter(Boolean).join(' ')).filter(Boolean),
    nics,
    kernel: osInfo.kernel,
    arch: osInfo.arch === 'x64' ? 'x86_64' : osInfo.arch,
  };
}


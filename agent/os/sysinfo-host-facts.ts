// Gathers the host's capacity with systeminformation (CPU model and flags, memory, GPUs), the NICs
// from the kernel (nic-facts.ts), and kernel release and architecture from Node (systeminformation's
// osInfo() blocked the event loop for 41 ms for the same two values). Done once at start and on
// re-registration; never on the heartbeat path.
import os from 'node:os';
import si from 'systeminformation';
import type { HostCapacity } from '../../shared/host-types';
import { probeNics } from './nic-facts';

export async function probeHostCapacity(): Promise<HostCapacity> {
  const [cpu, flags, mem, nics, graphics] = await Promise.all([
    si.cpu(),
    si.cpuFlags(),
    si.mem(),
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
    kernel: os.release(),
    arch: os.arch() === 'x64' ? 'x86_64' : os.arch(),
  };
}


// Gathers the host's capacity with systeminformation (CPU model and flags, memory, GPUs), the NICs
// from the kernel (nic-facts.ts), and kernel release and architecture from Node (systeminformation's
// osInfo() blocked the event loop for 41 ms for the same two values). Done once at start and on
// re-registration; never on the heartbeat path.
import os from 'node:os';
import si from 'systeminformation';
import type { HostCapacity } from '../../shared/host-types';
import { normalizePciAddress } from './pci-address';
import { probeNics } from './nic-facts';

interface GraphicsController {
  vendor: string;
  model: string;
  busAddress?: string;
}

/** How facts name a GPU; a guest's passed-through GPU is named the same way (hostGpusByAddress). */
function gpuModelName(c: GraphicsController): string {
  return [c.vendor, c.model].filter(Boolean).join(' ');
}

async function graphicsControllers(): Promise<GraphicsController[]> {
  return (await si.graphics().catch(() => ({ controllers: [] as GraphicsController[] }))).controllers;
}

export async function probeHostCapacity(): Promise<HostCapacity> {
  const [cpu, flags, mem, nics, graphics] = await Promise.all([
    si.cpu(),
    si.cpuFlags(),
    si.mem(),
    probeNics(),
    graphicsControllers(),
  ]);
  return {
    cpu_cores: cpu.physicalCores || cpu.cores,
    cpu_threads: cpu.cores,
    cpu_vendor: cpu.manufacturer || cpu.vendor || '',
    cpu_model: [cpu.manufacturer, cpu.brand].filter(Boolean).join(' ').trim(),
    cpu_flags: flags.split(/\s+/).filter(Boolean).sort(),
    memory_bytes: mem.total,
    gpu_models: graphics.map(gpuModelName).filter(Boolean),
    nics,
    kernel: os.release(),
    arch: os.arch() === 'x64' ? 'x86_64' : os.arch(),
  };
}

/** The host's GPUs by PCI address (sysfs form), named as in its facts. */
export async function hostGpusByAddress(): Promise<Map<string, string>> {
  const byAddress = new Map<string, string>();
  for (const c of await graphicsControllers()) {
    const addr = c.busAddress ? normalizePciAddress(c.busAddress) : undefined;
    const name = gpuModelName(c);
    if (addr && name) byAddress.set(addr, name);
  }
  return byAddress;
}

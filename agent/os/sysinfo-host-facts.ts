// Gathers the host's capacity with systeminformation (CPU model and flags, memory, GPUs, NICs,
// kernel). Done once at start and on re-registration; never on the heartbeat path.
import si from 'systeminformation';
import type { HostCapacity, Nic } from '../../shared/host-types';

export async function probeHostCapacity(): Promise<HostCapacity> {
  const [cpu, flags, mem, osInfo, nets, graphics] = await Promise.all([
    si.cpu(),
    si.cpuFlags(),
    si.mem(),
    si.osInfo(),
    si.networkInterfaces(),
    si.graphics().catch(() => ({ controllers: [] as Array<{ model: string; vendor: string }> })),
  ]);
  const nicList = (Array.isArray(nets) ? nets : [nets])
    .filter((n) => !n.internal && n.iface)
    .map(
      (n): Nic => ({
        name: n.iface,
        mac: (n.mac || '').toLowerCase(),
        speed_mbps: typeof n.speed === 'number' && n.speed > 0 ? Math.round(n.speed) : 0,
        addresses: [n.ip4 && `${n.ip4}/${maskBits(n.ip4subnet)}`, n.ip6 && !n.ip6.startsWith('fe80') && `${n.ip6}/64`].filter(
          (a): a is string => Boolean(a),
        ),
      }),
    );
  return {
    cpu_cores: cpu.physicalCores || cpu.cores,
    cpu_threads: cpu.cores,
    cpu_vendor: cpu.manufacturer || cpu.vendor || '',
    cpu_model: [cpu.manufacturer, cpu.brand].filter(Boolean).join(' ').trim(),
    cpu_flags: flags.split(/\s+/).filter(Boolean).sort(),
    memory_bytes: mem.total,
    gpu_models: graphics.controllers.map((c) => [c.vendor, c.model].filter(Boolean).join(' ')).filter(Boolean),
    nics: nicList,
    kernel: osInfo.kernel,
    arch: osInfo.arch === 'x64' ? 'x86_64' : osInfo.arch,
  };
}

function maskBits(mask: string | undefined): number {
  if (!mask) return 32;
  return mask.split('.').reduce((bits, octet) => bits + (Number(octet) >>> 0).toString(2).replace(/0/g, '').length, 0);
}

// The GPUs a profiled guest holds: its QEMU's vfio-pci devices (from /proc/PID/cmdline) that are
// GPUs of this host. The host's GPU list is read once, and only when some guest has vfio devices:
// listing them runs lspci.
import { readFile } from 'node:fs/promises';
import { hostGpusByAddress } from '../os/sysinfo-host-facts';
import { gpuModelsHeld, vfioHostAddresses } from './vfio-devices';

export class VmGpuReader {
  private gpus?: Promise<ReadonlyMap<string, string>>;

  constructor(
    private readonly listGpus: () => Promise<ReadonlyMap<string, string>> = hostGpusByAddress,
    private readonly procRoot = '/proc',
  ) {}

  /** GPU models held by the process's guest, one per device; [] when it holds none. */
  async of(pid: number): Promise<string[]> {
    const argv = (await readFile(`${this.procRoot}/${pid}/cmdline`)).toString().split('\0').filter(Boolean);
    const addresses = vfioHostAddresses(argv);
    if (addresses.length === 0) return [];
    this.gpus ??= this.listGpus();
    return gpuModelsHeld(addresses, await this.gpus);
  }
}

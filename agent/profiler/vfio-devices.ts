// Which host PCI devices a QEMU guest holds through vfio-pci, read from its command line, and
// which of them are GPUs: a guest holding a GPU can only move to a host with that GPU free. Pure.
import { normalizePciAddress } from '../os/pci-address';

/** Properties of one -device value, in QEMU's key=value form or its JSON form (libvirt uses JSON). */
function deviceProperties(value: string): Record<string, unknown> | undefined {
  if (value.trimStart().startsWith('{')) {
    try {
      const o: unknown = JSON.parse(value);
      return o !== null && typeof o === 'object' ? (o as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
  }
  // ",," is an escaped comma inside a value.
  const parts = value.replace(/,,/g, '\u0000').split(',').map((p) => p.replace(/\u0000/g, ','));
  const props: Record<string, unknown> = { driver: parts[0] };
  for (const p of parts.slice(1)) {
    const eq = p.indexOf('=');
    if (eq > 0) props[p.slice(0, eq)] = p.slice(eq + 1);
  }
  if (typeof props.driver === 'string' && props.driver.startsWith('driver=')) props.driver = props.driver.slice('driver='.length);
  return props;
}

/** The host PCI addresses of every vfio-pci device on a QEMU command line (argv), normalized. */
export function vfioHostAddresses(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length - 1; i++) {
    if (argv[i] !== '-device' && argv[i] !== '--device') continue;
    const props = deviceProperties(argv[i + 1]);
    if (props?.driver !== 'vfio-pci') continue;
    const raw = typeof props.host === 'string' ? props.host : typeof props.sysfsdev === 'string' ? props.sysfsdev.split('/').filter(Boolean).pop() ?? '' : '';
    const addr = normalizePciAddress(raw);
    if (addr && !out.includes(addr)) out.push(addr);
  }
  return out;
}

/**
 * The GPU models among a guest's vfio devices, named as the host's facts name them; devices that
 * are no GPU (a passed-through NIC or NVMe) are left out.
 */
export function gpuModelsHeld(addresses: readonly string[], gpusByAddress: ReadonlyMap<string, string>): string[] {
  return addresses.map((a) => gpusByAddress.get(a)).filter((m): m is string => m !== undefined);
}

// PCI addresses in the one form sysfs, lspci and QEMU's vfio-pci host= can all be matched in. Pure.

/** A PCI address as sysfs names it: domain:bus:slot.function, lower case ("0000:65:00.0"). */
export function normalizePciAddress(raw: string): string | undefined {
  const m = /^(?:([0-9a-f]{1,4}):)?([0-9a-f]{1,2}):([0-9a-f]{1,2})\.([0-7])$/i.exec(raw.trim());
  if (!m) return undefined;
  const [, domain = '0', bus, slot, fn] = m;
  return `${domain.padStart(4, '0')}:${bus.padStart(2, '0')}:${slot.padStart(2, '0')}.${fn}`.toLowerCase();
}

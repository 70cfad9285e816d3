// The host's NICs for its registration facts: every interface with an address (loopback aside),
// its MAC, link speed and addresses. Read from the kernel without spawning anything:
// systeminformation's networkInterfaces() runs shell commands synchronously per interface (0.2 s
// on an idle test machine, 1.3 s on a loaded one, the agent's event loop blocked throughout) and
// facts are gathered again at every re-registration, e.g. each time the coordinator restarts.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import type { Nic } from '../../shared/host-types';

type InterfaceAddresses = NodeJS.Dict<os.NetworkInterfaceInfo[]>;

/** NICs from os.networkInterfaces()-shaped input; `speedMbps` per interface (0 when unknown). */
export function nicsFrom(interfaces: InterfaceAddresses, speedMbps: (name: string) => number): Nic[] {
  const nics: Nic[] = [];
  for (const [name, addrs] of Object.entries(interfaces)) {
    if (!addrs || addrs.length === 0 || addrs.every((a) => a.internal)) continue;
    nics.push({
      name,
      mac: (addrs.find((a) => a.mac && a.mac !== '00:00:00:00:00:00')?.mac ?? '').toLowerCase(),
      speed_mbps: speedMbps(name),
      // Link-local IPv6 addresses say nothing about where the host is reachable.
      addresses: addrs.filter((a) => !a.internal && !(a.family === 'IPv6' && a.address.toLowerCase().startsWith('fe80'))).map((a) => a.cidr ?? a.address),
    });
  }
  return nics.sort((a, b) => a.name.localeCompare(b.name));
}

/** /sys/class/net/<name>/speed in Mb/s; 0 for virtual links, links that are down, or no such file. */
async function linkSpeedMbps(name: string): Promise<number> {
  try {
    const n = Number((await fs.readFile(`/sys/class/net/${name}/speed`, 'utf8')).trim());
    return Number.isFinite(n) && n > 0 ? n : 0;
  } catch {
    return 0;
  }
}

export async function probeNics(): Promise<Nic[]> {
  const interfaces = os.networkInterfaces();
  const names = Object.keys(interfaces);
  const speeds = new Map(await Promise.all(names.map(async (n) => [n, await linkSpeedMbps(n)] as const)));
  return nicsFrom(interfaces, (n) => speeds.get(n) ?? 0);
}

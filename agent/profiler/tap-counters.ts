// Reads a network interface's counters from /sys/class/net/<if>/statistics (the tap of a guest NIC).

import { readFile } from 'node:fs/promises';
import { parseIntegerFile } from './stat-parsers';

export interface LinkCounters {
  rxBytes?: number;
  txBytes?: number;
  rxPackets?: number;
  txPackets?: number;
}

async function counter(ifname: string, name: string): Promise<number | undefined> {
  try {
    return parseIntegerFile(await readFile(`/sys/class/net/${ifname}/statistics/${name}`, 'utf8'));
  } catch {
    return undefined;
  }
}

export async function readLinkCounters(ifname: string): Promise<LinkCounters> {
  if (!/^[\w.@-]{1,15}$/.test(ifname)) return {};
  const [rxBytes, txBytes, rxPackets, txPackets] = await Promise.all(['rx_bytes', 'tx_bytes', 'rx_packets', 'tx_packets'].map((n) => counter(ifname, n)));
  return { rxBytes, txBytes, rxPackets, txPackets };
}

// Reads a network interface's counters from /sys/class/net/<if>/statistics (the tap of a guest NIC).

import { readOr } from './pseudo-file';
import { parseIntegerFile } from './stat-parsers';

export interface LinkCounters {
  rxBytes?: number;
  txBytes?: number;
  rxPackets?: number;
  txPackets?: number;
}

function counter(ifname: string, name: string): number | undefined {
  return parseIntegerFile(readOr(`/sys/class/net/${ifname}/statistics/${name}`, ''));
}

export function readLinkCounters(ifname: string): LinkCounters {
  if (!/^[\w.@-]{1,15}$/.test(ifname)) return {};
  const [rxBytes, txBytes, rxPackets, txPackets] = ['rx_bytes', 'tx_bytes', 'rx_packets', 'tx_packets'].map((n) => counter(ifname, n));
  return { rxBytes, txBytes, rxPackets, txPackets };
}

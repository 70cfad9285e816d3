// Kernel counters of a packet socket this process holds (a libpcap capture's), read with
// getsockopt(PACKET_STATISTICS) through the native addon (native/packet-stats.c). The socket is
// found by what appeared around the capture's open: our fds (/proc/self/fd -> socket:[inode])
// joined with /proc/net/packet (inode -> interface index), before and after.
import { fstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { errorMessage } from '../../shared/errors';
import { NativeAddonMissingError, NativeCallError, nativeBuildDir } from '../memory/native-binding';
import {
  ownedPacketSockets,
  PacketCountAccumulator,
  parseProcNetPacket,
  pickNewPacketSocket,
  socketInodeOfLink,
  type KernelPacketCounts,
  type OwnedPacketSocket,
  type PacketStatisticsRead,
} from './proc-net-packet';

export type { KernelPacketCounts } from './proc-net-packet';

const PROC_SELF_FD = '/proc/self/fd';
const PROC_NET_PACKET = '/proc/net/packet';

interface PacketStatsAddon {
  packetStatistics(fd: number): PacketStatisticsRead;
  interfaceIndex(name: string): number;
}

let addon: PacketStatsAddon | undefined;

/** The addon's packet functions; NativeAddonMissingError when absent or built without them. */
function packetAddon(): PacketStatsAddon {
  if (addon) return addon;
  const file = path.join(nativeBuildDir(), 'umbra_memory.node');
  let a: Partial<PacketStatsAddon>;
  try {
    // Same file (and, through require's cache, same instance) as agent/memory/native-binding.ts.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    a = require(file) as Partial<PacketStatsAddon>;
  } catch (err) {
    throw new NativeAddonMissingError(errorMessage(err), { cause: err });
  }
  if (typeof a.packetStatistics !== 'function' || typeof a.interfaceIndex !== 'function') {
    throw new NativeAddonMissingError(`${file} was built without native/packet-stats.c`);
  }
  addon = a as PacketStatsAddon;
  return addon;
}

function nativeCall<T>(name: string, fn: (a: PacketStatsAddon) => T): T {
  const a = packetAddon();
  try {
    return fn(a);
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (typeof e.code === 'string') throw new NativeCallError(name, e.code, e.message ?? String(err), { cause: err });
    throw err;
  }
}

/** Index of `ifname` in this process's network namespace (NativeCallError ENODEV when absent). */
export function interfaceIndex(ifname: string): number {
  return nativeCall('if_nametoindex', (a) => a.interfaceIndex(ifname));
}

/** One PACKET_STATISTICS read of `fd` (the kernel zeroes its counters as it answers). */
export function readPacketStatistics(fd: number): PacketStatisticsRead {
  return nativeCall('getsockopt(PACKET_STATISTICS)', (a) => a.packetStatistics(fd));
}

/** fd -> socket inode for every socket this process holds. */
export function ownSocketInodes(): Map<number, number> {
  const out = new Map<number, number>();
  for (const name of readdirSync(PROC_SELF_FD)) {
    let target: string;
    try {
      target = readlinkSync(`${PROC_SELF_FD}/${name}`);
    } catch {
      continue; // closed between readdir and readlink (the directory's own fd, for one)
    }
    const inode = socketInodeOfLink(target);
    if (inode !== undefined) out.set(Number(name), inode);
  }
  return out;
}

/** The packet sockets this process holds, with their interface. */
export function ownPacketSockets(): OwnedPacketSocket[] {
  const fds = ownSocketInodes();
  return ownedPacketSockets(fds, parseProcNetPacket(readFileSync(PROC_NET_PACKET, 'utf8')));
}

/** What a capture reports of the kernel's counters: the totals, or why there are none. */
export type KernelCountsState = { counts: KernelPacketCounts } | { unavailable: string };

/**
 * Accumulated PACKET_STATISTICS of one packet socket. Only this object may read the socket's
 * counters (a read zeroes them). Each read first checks that the fd still holds the same socket
 * (fds are reused after close); once it does not, the last totals stay and the reason is given.
 */
export class PacketSocketCounter {
  private readonly acc = new PacketCountAccumulator();
  private stopped: string | undefined;

  constructor(readonly fd: number, readonly inode: number, readonly ifindex: number) {}

  /** Reads the kernel's counts since the last read and returns the totals. */
  read(): KernelCountsState {
    if (this.stopped === undefined) {
      try {
        const ino = fstatSync(this.fd).ino;
        if (ino !== this.inode) this.stopped = `fd ${this.fd} no longer holds the capture socket (inode ${this.inode})`;
        else this.acc.add(readPacketStatistics(this.fd));
      } catch (err) {
        this.stopped = `reading fd ${this.fd} failed: ${errorMessage(err)}`;
      }
    }
    if (this.stopped === undefined) return { counts: this.acc.totals() };
    const t = this.acc.totals();
    return { unavailable: `${this.stopped}; last totals received ${t.received}, dropped ${t.dropped}` };
  }

  /** Takes a final read (call before the socket is closed); later reads return these totals. */
  finish(): KernelCountsState {
    const last = this.read();
    if (this.stopped === undefined) this.stopped = 'capture closed';
    return last;
  }
}

/**
 * Finds the packet socket a capture opens: take the snapshot before opening, attach() after.
 * Never throws: a socket that cannot be found is an `unavailable` reason.
 */
export class PacketSocketProbe {
  private constructor(
    private readonly ifname: string,
    private readonly before: Set<number> | undefined,
    private readonly failure: string | undefined,
  ) {}

  static before(ifname: string): PacketSocketProbe {
    try {
      packetAddon();
      return new PacketSocketProbe(ifname, new Set(ownPacketSockets().map((s) => s.inode)), undefined);
    } catch (err) {
      return new PacketSocketProbe(ifname, undefined, errorMessage(err));
    }
  }

  /**
   * The counter of the one packet socket bound to the interface that appeared since before();
   * the counts start here (a first read zeroes what came before the capture's filter was set).
   */
  attach(): PacketSocketCounter | { unavailable: string } {
    if (!this.before) return { unavailable: `kernel packet statistics unavailable: ${this.failure}` };
    try {
      const pick = pickNewPacketSocket(this.before, ownPacketSockets(), interfaceIndex(this.ifname));
      if ('reason' in pick) return { unavailable: `kernel packet statistics unavailable: ${pick.reason}` };
      const { fd, inode, ifindex } = pick.socket;
      readPacketStatistics(fd); // zeroes what the socket counted before the capture's filter was set
      return new PacketSocketCounter(fd, inode, ifindex);
    } catch (err) {
      return { unavailable: `kernel packet statistics unavailable: ${errorMessage(err)}` };
    }
  }
}

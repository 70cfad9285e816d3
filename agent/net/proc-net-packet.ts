// Pure parts of finding a packet socket of our own: parsing /proc/net/packet and /proc/self/fd
// link targets, choosing the socket a capture opened, and accumulating PACKET_STATISTICS reads
// (the kernel zeroes its counters on each read). No I/O here; packet-socket-stats.ts does it.

/** One row of /proc/net/packet (the packet sockets of the reader's network namespace). */
export interface ProcPacketSocket {
  inode: number;
  /** Socket type: 3 SOCK_RAW, 2 SOCK_DGRAM. */
  type: number;
  /** Bound protocol in host order (0x0003 ETH_P_ALL); 0 when not bound to a protocol. */
  protocol: number;
  /** Interface the socket is bound to; 0 for all interfaces. */
  ifindex: number;
  /** The socket is hooked into the receive path. */
  running: boolean;
  uid: number;
}

const REQUIRED_COLUMNS = ['Type', 'Proto', 'Iface', 'R', 'User', 'Inode'] as const;

/** Thrown when the text does not look like /proc/net/packet. */
export class ProcNetPacketFormatError extends Error {
  constructor(message: string) {
    super(`/proc/net/packet: ${message}`);
    this.name = 'ProcNetPacketFormatError';
  }
}

/**
 * Parses /proc/net/packet. Columns are found by their header names (the kernel prints
 * "sk RefCnt Type Proto Iface R Rmem User Inode"); a row whose field count or numbers do not fit
 * the header makes the whole text rejected rather than half-read.
 */
export function parseProcNetPacket(text: string): ProcPacketSocket[] {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  if (lines.length === 0) throw new ProcNetPacketFormatError('empty');
  const header = lines[0].trim().split(/\s+/);
  const col = Object.fromEntries(REQUIRED_COLUMNS.map((name) => [name, header.indexOf(name)])) as Record<(typeof REQUIRED_COLUMNS)[number], number>;
  const missing = REQUIRED_COLUMNS.filter((name) => col[name] < 0);
  if (missing.length > 0) throw new ProcNetPacketFormatError(`header lacks ${missing.join(', ')}: ${lines[0].trim()}`);
  const out: ProcPacketSocket[] = [];
  for (let i = 1; i < lines.length; i++) {
    const f = lines[i].trim().split(/\s+/);
    if (f.length !== header.length) throw new ProcNetPacketFormatError(`line ${i + 1} has ${f.length} fields, the header ${header.length}`);
    const dec = (name: (typeof REQUIRED_COLUMNS)[number]) => {
      const s = f[col[name]];
      if (!/^\d+$/.test(s)) throw new ProcNetPacketFormatError(`line ${i + 1}: ${name} is not a number: ${s}`);
      return Number(s);
    };
    const proto = f[col.Proto];
    if (!/^[0-9a-fA-F]{1,4}$/.test(proto)) throw new ProcNetPacketFormatError(`line ${i + 1}: Proto is not hexadecimal: ${proto}`);
    out.push({
      inode: dec('Inode'),
      type: dec('Type'),
      protocol: parseInt(proto, 16),
      ifindex: dec('Iface'),
      running: dec('R') === 1,
      uid: dec('User'),
    });
  }
  return out;
}

/** The inode of a /proc/<pid>/fd link target "socket:[12345]"; undefined for anything else. */
export function socketInodeOfLink(target: string): number | undefined {
  const m = /^socket:\[(\d+)\]$/.exec(target);
  return m ? Number(m[1]) : undefined;
}

/** A packet socket held by this process: its fd and what /proc/net/packet says of it. */
export interface OwnedPacketSocket extends ProcPacketSocket {
  fd: number;
}

/** Joins our fds (fd -> socket inode) with the namespace's packet sockets. */
export function ownedPacketSockets(fdInodes: ReadonlyMap<number, number>, sockets: readonly ProcPacketSocket[]): OwnedPacketSocket[] {
  const byInode = new Map(sockets.map((s) => [s.inode, s]));
  const out: OwnedPacketSocket[] = [];
  for (const [fd, inode] of fdInodes) {
    const s = byInode.get(inode);
    if (s) out.push({ fd, ...s });
  }
  return out.sort((a, b) => a.fd - b.fd);
}

export type SocketPick = { socket: OwnedPacketSocket } | { reason: string };

/**
 * The socket a capture opened on `ifindex`: a packet socket of ours bound to that interface
 * whose inode was not there before the capture was opened. Exactly one must qualify; none or
 * several is reported with the reason (never a guess).
 */
export function pickNewPacketSocket(inodesBefore: ReadonlySet<number>, after: readonly OwnedPacketSocket[], ifindex: number): SocketPick {
  const fresh = after.filter((s) => !inodesBefore.has(s.inode));
  const onIf = fresh.filter((s) => s.ifindex === ifindex);
  if (onIf.length === 1) return { socket: onIf[0] };
  if (onIf.length === 0) {
    const seen = fresh.map((s) => `fd ${s.fd} ifindex ${s.ifindex}`).join(', ') || 'none';
    return { reason: `no new packet socket bound to ifindex ${ifindex} after the capture opened (new packet sockets: ${seen})` };
  }
  return { reason: `${onIf.length} new packet sockets bound to ifindex ${ifindex} (fds ${onIf.map((s) => s.fd).join(', ')}): cannot tell which is the capture's` };
}

/** One PACKET_STATISTICS read: counts since the previous read. */
export interface PacketStatisticsRead {
  /** Frames that passed the socket filter, dropped ones included (the kernel adds them in). */
  packets: number;
  /** Frames dropped because the ring (or receive queue) was full. */
  drops: number;
  /** TPACKET_V3 only: times the ring's queue was frozen. */
  freezeQueueCount?: number;
}

/** Totals since counting began. */
export interface KernelPacketCounts {
  /** Frames that passed the filter: delivered to the ring or dropped. */
  received: number;
  dropped: number;
  /** TPACKET_V3 only. */
  freezeQueueCount?: number;
}

/** Sums reads that each return the counts since the previous one. */
export class PacketCountAccumulator {
  private received = 0;
  private dropped = 0;
  private freeze: number | undefined;

  add(read: PacketStatisticsRead): KernelPacketCounts {
    this.received += read.packets;
    this.dropped += read.drops;
    if (read.freezeQueueCount !== undefined) this.freeze = (this.freeze ?? 0) + read.freezeQueueCount;
    return this.totals();
  }

  totals(): KernelPacketCounts {
    return this.freeze === undefined
      ? { received: this.received, dropped: this.dropped }
      : { received: this.received, dropped: this.dropped, freezeQueueCount: this.freeze };
  }
}

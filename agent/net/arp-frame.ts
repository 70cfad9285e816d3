// Builds the Ethernet frame of a gratuitous ARP (RFC 5227 announcement) byte by byte (pure).
import { InvalidArgumentError } from '../../shared/errors';

export const ETHERTYPE_ARP = 0x0806;
export const ARP_OP_REQUEST = 1;
export const ARP_OP_REPLY = 2;
/** Minimum Ethernet frame without FCS; shorter frames are padded with zeros. */
export const ETH_MIN_FRAME_BYTES = 60;
const ETH_HEADER_BYTES = 14;
const BROADCAST_MAC = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

export interface GratuitousArpInput {
  /** Sender MAC (6 bytes): Ethernet source and ARP sender hardware address. */
  mac: Uint8Array;
  /** Announced IPv4 address (4 bytes): both sender and target protocol address. */
  ipv4: Uint8Array;
  /** 'request' (default, what Linux and keepalived send) or 'reply'. */
  operation?: 'request' | 'reply';
}

/**
 * Layout: Ethernet dst ff:ff:ff:ff:ff:ff, src = mac, type 0x0806; ARP htype 1, ptype 0x0800,
 * hlen 6, plen 4, op, sha = mac, spa = ip, tha (zeros for a request, mac for a reply), tpa = ip;
 * zero padding to 60 bytes.
 */
export function buildGratuitousArp(input: GratuitousArpInput): Buffer {
  if (input.mac.length !== 6) throw new InvalidArgumentError('mac', `needs 6 bytes, got ${input.mac.length}`);
  if (input.ipv4.length !== 4) throw new InvalidArgumentError('ipv4', `needs 4 bytes, got ${input.ipv4.length}`);
  const reply = input.operation === 'reply';
  const frame = Buffer.alloc(ETH_MIN_FRAME_BYTES);
  BROADCAST_MAC.copy(frame, 0);
  frame.set(input.mac, 6);
  frame.writeUInt16BE(ETHERTYPE_ARP, 12);
  const o = ETH_HEADER_BYTES;
  frame.writeUInt16BE(1, o); // hardware type: Ethernet
  frame.writeUInt16BE(0x0800, o + 2); // protocol type: IPv4
  frame[o + 4] = 6;
  frame[o + 5] = 4;
  frame.writeUInt16BE(reply ? ARP_OP_REPLY : ARP_OP_REQUEST, o + 6);
  frame.set(input.mac, o + 8);
  frame.set(input.ipv4, o + 14);
  if (reply) frame.set(input.mac, o + 18); // a gratuitous reply has tha = sha (what the kernel's arp_is_garp checks)
  frame.set(input.ipv4, o + 24);
  return frame;
}

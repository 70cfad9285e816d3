// Builds the Ethernet frame of an unsolicited IPv6 Neighbor Advertisement (RFC 4861 7.2.6) (pure).
import { InvalidArgumentError } from '../../shared/errors';

export const ETHERTYPE_IPV6 = 0x86dd;
const ICMPV6_NEXT_HEADER = 58;
const ICMPV6_NEIGHBOR_ADVERTISEMENT = 136;
const NA_FLAG_OVERRIDE = 0x20;
const OPTION_TARGET_LINK_LAYER_ADDRESS = 2;
const NA_PAYLOAD_BYTES = 32; // type..reserved (8) + target (16) + option (8)
const ALL_NODES_IPV6 = Buffer.from('ff020000000000000000000000000001', 'hex');
const ALL_NODES_MAC = Buffer.from([0x33, 0x33, 0x00, 0x00, 0x00, 0x01]);

export interface UnsolicitedNaInput {
  /** Link-layer address announced (6 bytes): Ethernet source and target link-layer option. */
  mac: Uint8Array;
  /** Target IPv6 address (16 bytes), also used as the IPv6 source. */
  ipv6: Uint8Array;
}

/** Internet checksum (RFC 1071) of `data`, with `initial` as a running 32-bit sum. */
export function onesComplementChecksum(data: Uint8Array, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < data.length; i += 2) sum += (data[i] << 8) | data[i + 1];
  if (data.length % 2 === 1) sum += data[data.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/**
 * Ethernet dst 33:33:00:00:00:01, src mac, type 0x86dd; IPv6 src = target, dst ff02::1, hop
 * limit 255 (receivers drop NAs with any other); ICMPv6 type 136 with only Override set (an
 * unsolicited NA must not claim Solicited), the target, and a target link-layer address option.
 */
export function buildUnsolicitedNa(input: UnsolicitedNaInput): Buffer {
  if (input.mac.length !== 6) throw new InvalidArgumentError('mac', `needs 6 bytes, got ${input.mac.length}`);
  if (input.ipv6.length !== 16) throw new InvalidArgumentError('ipv6', `needs 16 bytes, got ${input.ipv6.length}`);
  const frame = Buffer.alloc(14 + 40 + NA_PAYLOAD_BYTES);
  ALL_NODES_MAC.copy(frame, 0);
  frame.set(input.mac, 6);
  frame.writeUInt16BE(ETHERTYPE_IPV6, 12);
  const ip = 14;
  frame.writeUInt32BE(0x60000000, ip); // version 6, traffic class 0, flow label 0
  frame.writeUInt16BE(NA_PAYLOAD_BYTES, ip + 4);
  frame[ip + 6] = ICMPV6_NEXT_HEADER;
  frame[ip + 7] = 255;
  frame.set(input.ipv6, ip + 8);
  ALL_NODES_IPV6.copy(frame, ip + 24);
  const icmp = ip + 40;
  frame[icmp] = ICMPV6_NEIGHBOR_ADVERTISEMENT;
  frame[icmp + 1] = 0;
  frame[icmp + 4] = NA_FLAG_OVERRIDE;
  frame.set(input.ipv6, icmp + 8);
  frame[icmp + 24] = OPTION_TARGET_LINK_LAYER_ADDRESS;
  frame[icmp + 25] = 1; // option length in units of 8 bytes
  frame.set(input.mac, icmp + 26);
  // Pseudo-header: source, destination, upper-layer length (32 bits), 3 zero bytes, next header.
  const pseudo = Buffer.alloc(40);
  frame.copy(pseudo, 0, ip + 8, ip + 40);
  pseudo.writeUInt32BE(NA_PAYLOAD_BYTES, 32);
  pseudo[39] = ICMPV6_NEXT_HEADER;
  const partial = ~onesComplementChecksum(pseudo) & 0xffff;
  frame.writeUInt16BE(onesComplementChecksum(frame.subarray(icmp), partial), icmp + 2);
  return frame;
}

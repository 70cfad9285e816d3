// Finds the DHCP message inside a captured Ethernet frame (802.1Q/802.1ad tags, IPv4, UDP 67/68)
// and builds such frames for tests, benchmarks and malformed-frame injection.
import { InvalidArgumentError } from '../../shared/errors';
import { DhcpDecodeError, type DhcpDecodeErrorCode } from './dhcp-decode-error';
import { DHCP_CLIENT_PORT, DHCP_SERVER_PORT } from './dhcp-option-codes';
import { DhcpPacketView } from './dhcp-packet-codec';
import { parseIpv4, parseMac, readU32 } from './dhcp-wire';

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_VLAN = 0x8100;
const ETHERTYPE_QINQ = 0x88a8;
/** Tags accepted in front of IPv4 (QinQ = 2); more is not a VM network we serve. */
const MAX_VLAN_TAGS = 2;
const ETHERNET_HEADER_BYTES = 14;
const VLAN_TAG_BYTES = 4;
const UDP_HEADER_BYTES = 8;
const IP_PROTO_UDP = 17;
const ETHERNET_MIN_FRAME_BYTES = 60;

/**
 * Reusable view of one captured frame. After a successful `tryDecode`, the L2-L4 fields are set
 * and `packet` holds the DHCP message view; nothing is allocated per frame.
 */
export class DhcpFrameView {
  readonly packet = new DhcpPacketView();
  /** Outer 802.1Q VLAN id, -1 when untagged. */
  vlanId = -1;
  /** MACs as 48-bit numbers (see macNumberToText). */
  srcMac = 0;
  dstMac = 0;
  /** IPv4 addresses as unsigned 32-bit numbers. */
  srcIp = 0;
  dstIp = 0;
  srcPort = 0;
  dstPort = 0;
  payloadStart = 0;
  payloadLength = 0;
  /** Byte offset in the frame where the last rejected frame went wrong. */
  errorOffset = 0;

  decode(buf: Buffer, length = buf.length): this {
    const code = this.tryDecode(buf, length);
    if (code !== null) throw new DhcpDecodeError(code, this.errorOffset);
    return this;
  }

  /** Decodes buf[0, length); null when it is a well-formed DHCP frame, else the reason. */
  tryDecode(buf: Buffer, length = buf.length): DhcpDecodeErrorCode | null {
    this.vlanId = -1;
    this.errorOffset = 0;
    if (length > buf.length || length < 0) length = buf.length;
    if (length < ETHERNET_HEADER_BYTES) return this.fail('TRUNCATED', length);
    this.dstMac = ((buf[0] << 8) | buf[1]) * 0x100000000 + readU32(buf, 2);
    this.srcMac = ((buf[6] << 8) | buf[7]) * 0x100000000 + readU32(buf, 8);
    let p = 12;
    let type = (buf[p] << 8) | buf[p + 1];
    for (let tags = 0; type === ETHERTYPE_VLAN || type === ETHERTYPE_QINQ; tags++) {
      if (tags >= MAX_VLAN_TAGS) return this.fail('NOT_IPV4', p);
      if (p + 2 + VLAN_TAG_BYTES > length) return this.fail('TRUNCATED', p);
      if (this.vlanId < 0) this.vlanId = ((buf[p + 2] << 8) | buf[p + 3]) & 0x0fff;
      p += VLAN_TAG_BYTES;
      type = (buf[p] << 8) | buf[p + 1];
    }
    if (type !== ETHERTYPE_IPV4) return this.fail('NOT_IPV4', p);
    const ip = p + 2;
    if (ip + 20 > length) return this.fail('TRUNCATED', ip);
    const vihl = buf[ip];
    const ihlBytes = (vihl & 0x0f) * 4;
    if (vihl >> 4 !== 4 || ihlBytes < 20) return this.fail('BAD_IP_HEADER', ip);
    if (ip + ihlBytes > length) return this.fail('TRUNCATED', ip);
    const totalLength = (buf[ip + 2] << 8) | buf[ip + 3];
    if (totalLength < ihlBytes) return this.fail('BAD_IP_HEADER', ip + 2);
    // Ethernet pads short frames, so the frame may be longer than the datagram, never shorter.
    if (ip + totalLength > length) return this.fail('TRUNCATED', ip + 2);
    if (ipv4HeaderSum(buf, ip, ihlBytes) !== 0xffff) return this.fail('BAD_IP_HEADER', ip + 10);
    const frag = (buf[ip + 6] << 8) | buf[ip + 7];
    if ((frag & 0x3fff) !== 0) return this.fail('IP_FRAGMENT', ip + 6);
    if (buf[ip + 9] !== IP_PROTO_UDP) return this.fail('NOT_UDP', ip + 9);
    this.srcIp = readU32(buf, ip + 12);
    this.dstIp = readU32(buf, ip + 16);
    const udp = ip + ihlBytes;
    const ipPayload = totalLength - ihlBytes;
    if (ipPayload < UDP_HEADER_BYTES) return this.fail('TRUNCATED', udp);
    this.srcPort = (buf[udp] << 8) | buf[udp + 1];
    this.dstPort = (buf[udp + 2] << 8) | buf[udp + 3];
    const udpLength = (buf[udp + 4] << 8) | buf[udp + 5];
    if (udpLength < UDP_HEADER_BYTES || udpLength > ipPayload) return this.fail('BAD_UDP_LENGTH', udp + 4);
    if (!isDhcpPort(this.srcPort) && !isDhcpPort(this.dstPort)) return this.fail('NOT_DHCP_PORT', udp);
    this.payloadStart = udp + UDP_HEADER_BYTES;
    this.payloadLength = udpLength - UDP_HEADER_BYTES;
    const r = this.packet.tryDecode(buf, this.payloadStart, this.payloadLength);
    if (r !== null) return this.fail(r, this.payloadStart + this.packet.errorOffset);
    return null;
  }

  private fail(code: DhcpDecodeErrorCode, offset: number): DhcpDecodeErrorCode {
    this.errorOffset = offset;
    return code;
  }
}

function isDhcpPort(port: number): boolean {
  return port === DHCP_SERVER_PORT || port === DHCP_CLIENT_PORT;
}

/** One's-complement sum of the IPv4 header; 0xffff when its checksum is right. */
function ipv4HeaderSum(buf: Buffer, at: number, bytes: number): number {
  let sum = 0;
  for (let i = at; i < at + bytes; i += 2) sum += (buf[i] << 8) | buf[i + 1];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

export interface DhcpFrameInput {
  srcMac: string;
  /** Default broadcast. */
  dstMac?: string;
  /** 802.1Q tag to add, none by default. */
  vlanId?: number;
  /** Default 0.0.0.0 -> 255.255.255.255, client to server ports. */
  srcIp?: string;
  dstIp?: string;
  srcPort?: number;
  dstPort?: number;
  ttl?: number;
  payload: Buffer;
}

/** Wraps a DHCP message in Ethernet(+802.1Q)/IPv4/UDP with a correct IPv4 checksum (UDP checksum 0 = none). */
export function encodeDhcpFrame(f: DhcpFrameInput): Buffer {
  const src = parseMac(f.srcMac);
  const dst = parseMac(f.dstMac ?? 'ff:ff:ff:ff:ff:ff');
  if (!src || src.length !== 6) throw new InvalidArgumentError('srcMac', `'${f.srcMac}' is not a MAC`);
  if (!dst || dst.length !== 6) throw new InvalidArgumentError('dstMac', `'${f.dstMac}' is not a MAC`);
  const srcIp = parseIpv4(f.srcIp ?? '0.0.0.0');
  const dstIp = parseIpv4(f.dstIp ?? '255.255.255.255');
  if (srcIp === undefined) throw new InvalidArgumentError('srcIp', `'${f.srcIp}' is not an IPv4 address`);
  if (dstIp === undefined) throw new InvalidArgumentError('dstIp', `'${f.dstIp}' is not an IPv4 address`);
  const tagged = f.vlanId !== undefined;
  const l2 = ETHERNET_HEADER_BYTES + (tagged ? VLAN_TAG_BYTES : 0);
  const ipTotal = 20 + UDP_HEADER_BYTES + f.payload.length;
  if (ipTotal > 0xffff) throw new InvalidArgumentError('payload', 'does not fit in one IPv4 datagram');
  const out = Buffer.alloc(Math.max(ETHERNET_MIN_FRAME_BYTES, l2 + ipTotal));
  dst.copy(out, 0);
  src.copy(out, 6);
  let p = 12;
  if (tagged) {
    out.writeUInt16BE(ETHERTYPE_VLAN, p);
    out.writeUInt16BE((f.vlanId as number) & 0x0fff, p + 2);
    p += VLAN_TAG_BYTES;
  }
  out.writeUInt16BE(ETHERTYPE_IPV4, p);
  const ip = p + 2;
  out[ip] = 0x45;
  out.writeUInt16BE(ipTotal, ip + 2);
  out[ip + 8] = f.ttl ?? 64;
  out[ip + 9] = IP_PROTO_UDP;
  out.writeUInt32BE(srcIp, ip + 12);
  out.writeUInt32BE(dstIp, ip + 16);
  out.writeUInt16BE(0xffff - ipv4HeaderSum(out, ip, 20), ip + 10);
  const udp = ip + 20;
  out.writeUInt16BE(f.srcPort ?? DHCP_CLIENT_PORT, udp);
  out.writeUInt16BE(f.dstPort ?? DHCP_SERVER_PORT, udp + 2);
  out.writeUInt16BE(UDP_HEADER_BYTES + f.payload.length, udp + 4);
  f.payload.copy(out, udp + UDP_HEADER_BYTES);
  return out;
}

// Builds DHCPv4 messages from plain fields: traffic for tests and benchmarks, and frames to inject.
import { InvalidArgumentError } from '../../shared/errors';
import {
  BootpOffset,
  BOOTP_REPLY,
  BOOTP_REQUEST,
  CHADDR_BYTES,
  DHCP_MAGIC_COOKIE,
  DhcpMessageType,
  DhcpOption,
  FILE_BYTES,
  RelaySubOption,
  SNAME_BYTES,
} from './dhcp-option-codes';
import { parseIpv4, parseMac } from './dhcp-wire';

/** BOOTP's minimum message size (RFC 1542 2.1): relays drop shorter ones, so pad up to it. */
export const BOOTP_MIN_MESSAGE_BYTES = 300;

export interface RawOption {
  code: number;
  data: Buffer;
}

export interface DhcpEncodeInput {
  /** Default: 1 (request) for client message types, 2 (reply) for server ones. */
  op?: number;
  htype?: number;
  hops?: number;
  xid: number;
  secs?: number;
  /** 0x8000 = broadcast. */
  flags?: number;
  ciaddr?: string;
  yiaddr?: string;
  siaddr?: string;
  giaddr?: string;
  /** Client hardware address, colon hex; hlen follows its length. */
  chaddr: string;
  sname?: string;
  file?: string;
  messageType?: number;
  subnetMask?: string;
  routers?: string[];
  dnsServers?: string[];
  hostname?: string;
  domainName?: string;
  requestedAddress?: string;
  leaseTimeSec?: number;
  renewalTimeSec?: number;
  rebindingTimeSec?: number;
  serverId?: string;
  /** Option 61 as hex. */
  clientId?: string;
  relayAgentInfo?: { circuitId?: Buffer; remoteId?: Buffer };
  /** Further options (unknown ones included), written after the typed ones, in order. */
  extraOptions?: RawOption[];
  /** Options carried in the file and/or sname fields; sets option 52 accordingly. */
  overloadFile?: RawOption[];
  overloadSname?: RawOption[];
  /** Minimum message size; default BOOTP_MIN_MESSAGE_BYTES. */
  minBytes?: number;
}

const CLIENT_TYPES = new Set<number>([
  DhcpMessageType.DISCOVER,
  DhcpMessageType.REQUEST,
  DhcpMessageType.DECLINE,
  DhcpMessageType.RELEASE,
  DhcpMessageType.INFORM,
]);

function ipBytes(field: string, text: string): Buffer {
  const v = parseIpv4(text);
  if (v === undefined) throw new InvalidArgumentError(field, `'${text}' is not an IPv4 address`);
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
}

function u32Bytes(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}

/** Writes options as TLVs, splitting data over 255 bytes into repeated codes (RFC 3396). */
function writeOptions(options: RawOption[], out: number[]): void {
  for (const o of options) {
    let p = 0;
    do {
      const n = Math.min(255, o.data.length - p);
      out.push(o.code, n);
      for (let i = 0; i < n; i++) out.push(o.data[p + i]);
      p += n;
    } while (p < o.data.length);
  }
}

function typedOptions(m: DhcpEncodeInput): RawOption[] {
  const O = DhcpOption;
  const opts: RawOption[] = [];
  const add = (code: number, data: Buffer) => opts.push({ code, data });
  if (m.messageType !== undefined) add(O.MESSAGE_TYPE, Buffer.from([m.messageType]));
  if (m.serverId !== undefined) add(O.SERVER_ID, ipBytes('serverId', m.serverId));
  if (m.requestedAddress !== undefined) add(O.REQUESTED_ADDRESS, ipBytes('requestedAddress', m.requestedAddress));
  if (m.clientId !== undefined) add(O.CLIENT_ID, Buffer.from(m.clientId, 'hex'));
  if (m.leaseTimeSec !== undefined) add(O.LEASE_TIME, u32Bytes(m.leaseTimeSec));
  if (m.renewalTimeSec !== undefined) add(O.RENEWAL_TIME, u32Bytes(m.renewalTimeSec));
  if (m.rebindingTimeSec !== undefined) add(O.REBINDING_TIME, u32Bytes(m.rebindingTimeSec));
  if (m.subnetMask !== undefined) add(O.SUBNET_MASK, ipBytes('subnetMask', m.subnetMask));
  if (m.routers) add(O.ROUTER, Buffer.concat(m.routers.map((r, i) => ipBytes(`routers[${i}]`, r))));
  if (m.dnsServers) add(O.DNS_SERVERS, Buffer.concat(m.dnsServers.map((r, i) => ipBytes(`dnsServers[${i}]`, r))));
  if (m.hostname !== undefined) add(O.HOSTNAME, Buffer.from(m.hostname, 'latin1'));
  if (m.domainName !== undefined) add(O.DOMAIN_NAME, Buffer.from(m.domainName, 'latin1'));
  if (m.relayAgentInfo) {
    const subs: RawOption[] = [];
    if (m.relayAgentInfo.circuitId) subs.push({ code: RelaySubOption.CIRCUIT_ID, data: m.relayAgentInfo.circuitId });
    if (m.relayAgentInfo.remoteId) subs.push({ code: RelaySubOption.REMOTE_ID, data: m.relayAgentInfo.remoteId });
    const bytes: number[] = [];
    writeOptions(subs, bytes);
    add(O.RELAY_AGENT_INFO, Buffer.from(bytes));
  }
  return opts;
}

function fillField(out: Buffer, at: number, size: number, field: string, text?: string, options?: RawOption[]): void {
  if (options) {
    const bytes: number[] = [];
    writeOptions(options, bytes);
    bytes.push(DhcpOption.END);
    if (bytes.length > size) throw new InvalidArgumentError(field, `options need ${bytes.length} bytes, the field holds ${size}`);
    Buffer.from(bytes).copy(out, at);
  } else if (text) {
    const b = Buffer.from(text, 'latin1');
    if (b.length > size) throw new InvalidArgumentError(field, `longer than ${size} bytes`);
    b.copy(out, at);
  }
}

/** Encodes one message (UDP payload). Throws InvalidArgumentError naming a bad field. */
export function encodeDhcpPacket(m: DhcpEncodeInput): Buffer {
  const chaddr = parseMac(m.chaddr);
  if (!chaddr || chaddr.length > CHADDR_BYTES) throw new InvalidArgumentError('chaddr', `'${m.chaddr}' is not a hardware address`);
  const options: number[] = [];
  const overload = (m.overloadFile ? 1 : 0) | (m.overloadSname ? 2 : 0);
  if (overload) writeOptions([{ code: DhcpOption.OVERLOAD, data: Buffer.from([overload]) }], options);
  writeOptions(typedOptions(m), options);
  if (m.extraOptions) writeOptions(m.extraOptions, options);
  options.push(DhcpOption.END);
  const size = Math.max(BootpOffset.OPTIONS + options.length, m.minBytes ?? BOOTP_MIN_MESSAGE_BYTES);
  const out = Buffer.alloc(size);
  const op = m.op ?? (m.messageType !== undefined && !CLIENT_TYPES.has(m.messageType) ? BOOTP_REPLY : BOOTP_REQUEST);
  out[BootpOffset.OP] = op;
  out[BootpOffset.HTYPE] = m.htype ?? 1;
  out[BootpOffset.HLEN] = chaddr.length;
  out[BootpOffset.HOPS] = m.hops ?? 0;
  out.writeUInt32BE(m.xid >>> 0, BootpOffset.XID);
  out.writeUInt16BE(m.secs ?? 0, BootpOffset.SECS);
  out.writeUInt16BE(m.flags ?? 0, BootpOffset.FLAGS);
  if (m.ciaddr) ipBytes('ciaddr', m.ciaddr).copy(out, BootpOffset.CIADDR);
  if (m.yiaddr) ipBytes('yiaddr', m.yiaddr).copy(out, BootpOffset.YIADDR);
  if (m.siaddr) ipBytes('siaddr', m.siaddr).copy(out, BootpOffset.SIADDR);
  if (m.giaddr) ipBytes('giaddr', m.giaddr).copy(out, BootpOffset.GIADDR);
  chaddr.copy(out, BootpOffset.CHADDR);
  fillField(out, BootpOffset.SNAME, SNAME_BYTES, 'sname', m.sname, m.overloadSname);
  fillField(out, BootpOffset.FILE, FILE_BYTES, 'file', m.file, m.overloadFile);
  out.writeUInt32BE(DHCP_MAGIC_COOKIE, BootpOffset.MAGIC);
  Buffer.from(options).copy(out, BootpOffset.OPTIONS);
  return out;
}

// Decodes (and encodes) BOOTP/DHCPv4 messages from UDP payload bytes: a zero-allocation view
// for the capture hot path, and plain `DhcpMessage` objects for everything that keeps data.
import { DhcpDecodeError, type DhcpDecodeErrorCode } from './dhcp-decode-error';
import {
  BootpOffset,
  BOOTP_REPLY,
  BOOTP_REQUEST,
  CHADDR_BYTES,
  DHCP_MAGIC_COOKIE,
  DhcpOption,
  FILE_BYTES,
  RelaySubOption,
  SNAME_BYTES,
} from './dhcp-option-codes';
import { formatHex, formatIpv4, formatMac, parseRelayAgentInfo, readU32, trimmedText, type RelayAgentInfo } from './dhcp-wire';

export { encodeDhcpPacket, type DhcpEncodeInput, type RawOption } from './dhcp-packet-encoder';
export type { RelayAgentInfo } from './dhcp-wire';

/** Largest message accepted: a 9000-byte jumbo MTU minus IPv4 and UDP headers. */
export const MAX_DHCP_MESSAGE_BYTES = 9000 - 20 - 8;
/** Real clients send a few dozen options; more than this is garbage or an attack. */
export const MAX_OPTION_COUNT = 512;

/** One option as found on the wire; repeated codes are concatenated (RFC 3396). */
export interface DhcpRawOption {
  code: number;
  data: Buffer;
}

/** A decoded DHCP message as a plain object (addresses dotted, MACs colon-hex, ids hex). */
export interface DhcpMessage {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  /** Client hardware address, `hlen` bytes as colon-separated hex. */
  chaddr: string;
  /** Empty when the field carries options (overload) or is unused. */
  sname: string;
  file: string;
  /** Option 53; 0 for plain BOOTP. */
  messageType: number;
  /** Option 52: 0 none, 1 file, 2 sname, 3 both. */
  overload: number;
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
  /** Option 61 as hex (first byte is the type, 01 = Ethernet MAC follows). */
  clientId?: string;
  relayAgentInfo?: RelayAgentInfo;
  /** Every option in first-seen order, known ones included, data copied out of the capture buffer. */
  options: DhcpRawOption[];
}

type Check = DhcpDecodeErrorCode | null;

const EMPTY = Buffer.alloc(0);

/**
 * Reusable view over one DHCP message. `tryDecode` indexes the options without allocating and
 * returns null or the reason the bytes were rejected; accessors then read straight from the
 * buffer. The view is valid until the next decode and until the caller reuses the buffer (pcap
 * capture buffers are reused per packet): call `toMessage()` to keep anything.
 */
export class DhcpPacketView {
  buf: Buffer = EMPTY;
  start = 0;
  length = 0;
  /** Option 52 value, 0 when absent. */
  overload = 0;
  /** Option 53 value, 0 when absent (plain BOOTP). */
  messageType = 0;
  /** Number of option occurrences indexed (pads and END excluded). */
  optionCount = 0;
  /** Byte offset (relative to `start`) where the last rejected message went wrong. */
  errorOffset = 0;
  private readonly optCode = new Uint8Array(MAX_OPTION_COUNT);
  private readonly optStart = new Int32Array(MAX_OPTION_COUNT);
  private readonly optLen = new Uint8Array(MAX_OPTION_COUNT);
  // Per-code summary, valid only where stamp[code] === gen: avoids clearing 256 slots per packet.
  private readonly stamp = new Uint32Array(256);
  private readonly firstIndex = new Uint16Array(256);
  private readonly occurrences = new Uint16Array(256);
  private readonly totalLen = new Uint16Array(256);
  private gen = 0;

  /** Decodes or throws DhcpDecodeError. */
  decode(buf: Buffer, start = 0, length = buf.length - start): this {
    const code = this.tryDecode(buf, start, length);
    if (code !== null) throw new DhcpDecodeError(code, this.errorOffset);
    return this;
  }

  /** Indexes the message in buf[start, start+length); null when it is well formed. */
  tryDecode(buf: Buffer, start = 0, length = buf.length - start): Check {
    this.buf = buf;
    this.start = start;
    this.length = length;
    this.overload = 0;
    this.messageType = 0;
    this.optionCount = 0;
    this.errorOffset = 0;
    if (++this.gen === 0xffffffff) {
      this.stamp.fill(0);
      this.gen = 1;
    }
    if (start < 0 || length < 0 || start + length > buf.length) return this.fail('TRUNCATED', 0);
    if (length > MAX_DHCP_MESSAGE_BYTES) return this.fail('OVERSIZED', MAX_DHCP_MESSAGE_BYTES);
    if (length < BootpOffset.OPTIONS) return this.fail(length < BootpOffset.MAGIC ? 'TRUNCATED' : 'BAD_MAGIC', length);
    const op = buf[start];
    if (op !== BOOTP_REQUEST && op !== BOOTP_REPLY) return this.fail('BAD_HEADER', BootpOffset.OP);
    if (buf[start + BootpOffset.HLEN] > CHADDR_BYTES) return this.fail('BAD_HEADER', BootpOffset.HLEN);
    if (readU32(buf, start + BootpOffset.MAGIC) !== DHCP_MAGIC_COOKIE) return this.fail('BAD_MAGIC', BootpOffset.MAGIC);

    let r = this.scan(start + BootpOffset.OPTIONS, start + length, true);
    if (r !== null) return r;
    if (this.overload !== 0) {
      // RFC 2131 4.1: file is read before sname.
      if (this.overload & 1) {
        r = this.scan(start + BootpOffset.FILE, start + BootpOffset.FILE + FILE_BYTES, false);
        if (r !== null) return r;
      }
      if (this.overload & 2) {
        r = this.scan(start + BootpOffset.SNAME, start + BootpOffset.SNAME + SNAME_BYTES, false);
        if (r !== null) return r;
      }
    }
    return this.checkKnownOptions();
  }

  private fail(code: DhcpDecodeErrorCode, offset: number): DhcpDecodeErrorCode {
    this.errorOffset = offset;
    return code;
  }

  /** Indexes one option area; the main field must end with END, overloaded fields may just fill up. */
  private scan(from: number, to: number, mainField: boolean): Check {
    const buf = this.buf;
    const gen = this.gen;
    let p = from;
    while (p < to) {
      const code = buf[p];
      if (code === DhcpOption.PAD) {
        p++;
        continue;
      }
      if (code === DhcpOption.END) return null;
      if (p + 1 >= to) return this.fail(mainField ? 'TRUNCATED' : 'BAD_OPTION_LENGTH', p - this.start);
      const len = buf[p + 1];
      const dataAt = p + 2;
      if (dataAt + len > to) return this.fail(mainField ? 'TRUNCATED' : 'BAD_OPTION_LENGTH', p + 1 - this.start);
      if (code === DhcpOption.OVERLOAD) {
        if (!mainField || len !== 1 || buf[dataAt] < 1 || buf[dataAt] > 3 || this.overload !== 0) {
          return this.fail('BAD_OVERLOAD', p - this.start);
        }
        this.overload = buf[dataAt];
      }
      const i = this.optionCount;
      if (i >= MAX_OPTION_COUNT) return this.fail('TOO_MANY_OPTIONS', p - this.start);
      this.optCode[i] = code;
      this.optStart[i] = dataAt;
      this.optLen[i] = len;
      this.optionCount = i + 1;
      if (this.stamp[code] !== gen) {
        this.stamp[code] = gen;
        this.firstIndex[code] = i;
        this.occurrences[code] = 1;
        this.totalLen[code] = len;
      } else {
        this.occurrences[code]++;
        this.totalLen[code] += len;
      }
      p = dataAt + len;
    }
    return mainField ? this.fail('MISSING_END', to - this.start) : null;
  }

  /** Length rules of the options this agent interprets (RFC 2132, 3046, 6842). */
  private checkKnownOptions(): Check {
    const gen = this.gen;
    const stamp = this.stamp;
    const totalLen = this.totalLen;
    for (const code of EXACTLY_FOUR) {
      if (stamp[code] === gen && totalLen[code] !== 4) return this.failOption(code);
    }
    for (const code of IPV4_LISTS) {
      if (stamp[code] === gen && (totalLen[code] === 0 || (totalLen[code] & 3) !== 0)) return this.failOption(code);
    }
    for (const code of NON_EMPTY) {
      if (stamp[code] === gen && totalLen[code] === 0) return this.failOption(code);
    }
    if (stamp[DhcpOption.MESSAGE_TYPE] === gen) {
      if (totalLen[DhcpOption.MESSAGE_TYPE] !== 1) return this.failOption(DhcpOption.MESSAGE_TYPE);
      this.messageType = this.buf[this.optStart[this.firstIndex[DhcpOption.MESSAGE_TYPE]]];
    }
    if (stamp[DhcpOption.MAX_MESSAGE_SIZE] === gen && totalLen[DhcpOption.MAX_MESSAGE_SIZE] !== 2) {
      return this.failOption(DhcpOption.MAX_MESSAGE_SIZE);
    }
    if (stamp[DhcpOption.CLIENT_ID] === gen && totalLen[DhcpOption.CLIENT_ID] < 2) return this.failOption(DhcpOption.CLIENT_ID);
    if (stamp[DhcpOption.RELAY_AGENT_INFO] === gen && !this.relaySubOptionsFit()) return this.failOption(DhcpOption.RELAY_AGENT_INFO);
    return null;
  }

  private failOption(code: number): DhcpDecodeErrorCode {
    return this.fail('BAD_OPTION_LENGTH', this.optStart[this.firstIndex[code]] - 2 - this.start);
  }

  private relaySubOptionsFit(): boolean {
    const code = DhcpOption.RELAY_AGENT_INFO;
    if (this.occurrences[code] === 1) {
      const at = this.optStart[this.firstIndex[code]];
      return subOptionsFit(this.buf, at, at + this.optLen[this.firstIndex[code]]);
    }
    const data = this.optionBytes(code);
    return data !== undefined && subOptionsFit(data, 0, data.length);
  }

  // ---- accessors (valid after a successful decode) ----

  get op(): number { return this.buf[this.start + BootpOffset.OP]; }
  get htype(): number { return this.buf[this.start + BootpOffset.HTYPE]; }
  get hlen(): number { return this.buf[this.start + BootpOffset.HLEN]; }
  get hops(): number { return this.buf[this.start + BootpOffset.HOPS]; }
  get xid(): number { return readU32(this.buf, this.start + BootpOffset.XID); }
  get secs(): number { return (this.buf[this.start + BootpOffset.SECS] << 8) | this.buf[this.start + BootpOffset.SECS + 1]; }
  get flags(): number { return (this.buf[this.start + BootpOffset.FLAGS] << 8) | this.buf[this.start + BootpOffset.FLAGS + 1]; }
  /** Addresses as unsigned 32-bit numbers (0 = unset); formatIpv4() turns them into text. */
  get ciaddr(): number { return readU32(this.buf, this.start + BootpOffset.CIADDR); }
  get yiaddr(): number { return readU32(this.buf, this.start + BootpOffset.YIADDR); }
  get siaddr(): number { return readU32(this.buf, this.start + BootpOffset.SIADDR); }
  get giaddr(): number { return readU32(this.buf, this.start + BootpOffset.GIADDR); }

  /** The client MAC as a 48-bit number (exact in a double), or -1 unless htype 1 / hlen 6. */
  macNumber(): number {
    if (this.buf[this.start + BootpOffset.HTYPE] !== 1 || this.buf[this.start + BootpOffset.HLEN] !== 6) return -1;
    const at = this.start + BootpOffset.CHADDR;
    return ((this.buf[at] << 8) | this.buf[at + 1]) * 0x100000000 + readU32(this.buf, at + 2);
  }

  /** Client hardware address (`hlen` bytes) as lower-case colon hex. */
  chaddrText(): string {
    return formatMac(this.buf, this.start + BootpOffset.CHADDR, this.hlen);
  }

  hasOption(code: number): boolean {
    return this.stamp[code] === this.gen;
  }

  /** Total data length of an option (all occurrences), -1 when absent. */
  optionLength(code: number): number {
    return this.stamp[code] === this.gen ? this.totalLen[code] : -1;
  }

  /** A 4-byte option as an unsigned number, -1 when absent. */
  optionU32(code: number): number {
    if (this.stamp[code] !== this.gen || this.totalLen[code] !== 4) return -1;
    if (this.occurrences[code] === 1) return readU32(this.buf, this.optStart[this.firstIndex[code]]);
    return readU32(this.optionBytes(code) as Buffer, 0);
  }

  optionIpv4(code: number): string | undefined {
    const v = this.optionU32(code);
    return v < 0 ? undefined : formatIpv4(v);
  }

  optionIpv4List(code: number): string[] | undefined {
    const data = this.optionSlice(code);
    if (!data) return undefined;
    const out: string[] = [];
    for (let i = 0; i + 4 <= data.length; i += 4) out.push(formatIpv4(readU32(data, i)));
    return out;
  }

  /** Option text (NVT ASCII, read as latin1), trailing NULs removed. */
  optionText(code: number): string | undefined {
    const data = this.optionSlice(code);
    return data ? trimmedText(data, 0, data.length) : undefined;
  }

  /** Option data as a fresh Buffer (occurrences concatenated), undefined when absent. */
  optionBytes(code: number): Buffer | undefined {
    if (this.stamp[code] !== this.gen) return undefined;
    const out = Buffer.allocUnsafe(this.totalLen[code]);
    let w = 0;
    for (let i = this.firstIndex[code]; i < this.optionCount; i++) {
      if (this.optCode[i] !== code) continue;
      w += this.buf.copy(out, w, this.optStart[i], this.optStart[i] + this.optLen[i]);
    }
    return out;
  }

  /** Zero-copy subarray when the option occurs once, else a concatenated copy. */
  private optionSlice(code: number): Buffer | undefined {
    if (this.stamp[code] !== this.gen) return undefined;
    if (this.occurrences[code] === 1) {
      const i = this.firstIndex[code];
      return this.buf.subarray(this.optStart[i], this.optStart[i] + this.optLen[i]);
    }
    return this.optionBytes(code);
  }

  relayAgentInfo(): RelayAgentInfo | undefined {
    const data = this.optionSlice(DhcpOption.RELAY_AGENT_INFO);
    return data ? parseRelayAgentInfo(data) : undefined;
  }

  /** Copies everything out of the buffer into a plain object. */
  toMessage(): DhcpMessage {
    const b = this.buf;
    const s = this.start;
    const msg: DhcpMessage = {
      op: this.op,
      htype: this.htype,
      hlen: this.hlen,
      hops: this.hops,
      xid: this.xid,
      secs: this.secs,
      flags: this.flags,
      ciaddr: formatIpv4(this.ciaddr),
      yiaddr: formatIpv4(this.yiaddr),
      siaddr: formatIpv4(this.siaddr),
      giaddr: formatIpv4(this.giaddr),
      chaddr: this.chaddrText(),
      sname: this.overload & 2 ? '' : trimmedText(b, s + BootpOffset.SNAME, s + BootpOffset.SNAME + SNAME_BYTES),
      file: this.overload & 1 ? '' : trimmedText(b, s + BootpOffset.FILE, s + BootpOffset.FILE + FILE_BYTES),
      messageType: this.messageType,
      overload: this.overload,
      options: [],
    };
    const O = DhcpOption;
    setIf(msg, 'subnetMask', this.optionIpv4(O.SUBNET_MASK));
    setIf(msg, 'routers', this.optionIpv4List(O.ROUTER));
    setIf(msg, 'dnsServers', this.optionIpv4List(O.DNS_SERVERS));
    setIf(msg, 'hostname', this.optionText(O.HOSTNAME));
    setIf(msg, 'domainName', this.optionText(O.DOMAIN_NAME));
    setIf(msg, 'requestedAddress', this.optionIpv4(O.REQUESTED_ADDRESS));
    setIf(msg, 'leaseTimeSec', numberIf(this.optionU32(O.LEASE_TIME)));
    setIf(msg, 'renewalTimeSec', numberIf(this.optionU32(O.RENEWAL_TIME)));
    setIf(msg, 'rebindingTimeSec', numberIf(this.optionU32(O.REBINDING_TIME)));
    setIf(msg, 'serverId', this.optionIpv4(O.SERVER_ID));
    const clientId = this.optionSlice(O.CLIENT_ID);
    if (clientId) msg.clientId = formatHex(clientId, 0, clientId.length);
    setIf(msg, 'relayAgentInfo', this.relayAgentInfo());
    for (let i = 0; i < this.optionCount; i++) {
      const code = this.optCode[i];
      if (this.firstIndex[code] !== i) continue;
      msg.options.push({ code, data: this.optionBytes(code) as Buffer });
    }
    return msg;
  }
}

const EXACTLY_FOUR: readonly number[] = [
  DhcpOption.SUBNET_MASK,
  DhcpOption.REQUESTED_ADDRESS,
  DhcpOption.LEASE_TIME,
  DhcpOption.SERVER_ID,
  DhcpOption.RENEWAL_TIME,
  DhcpOption.REBINDING_TIME,
];
const IPV4_LISTS: readonly number[] = [DhcpOption.ROUTER, DhcpOption.DNS_SERVERS];
const NON_EMPTY: readonly number[] = [DhcpOption.HOSTNAME, DhcpOption.DOMAIN_NAME, DhcpOption.PARAMETER_REQUEST_LIST];

/** Option 82 must be a sequence of sub-option TLVs filling it exactly (RFC 3046 2.0). */
function subOptionsFit(buf: Buffer, from: number, to: number): boolean {
  if (to - from < 2) return false;
  let p = from;
  while (p < to) {
    if (p + 2 > to) return false;
    p += 2 + buf[p + 1];
  }
  return p === to;
}

function numberIf(v: number): number | undefined {
  return v < 0 ? undefined : v;
}

function setIf<K extends keyof DhcpMessage>(msg: DhcpMessage, key: K, value: DhcpMessage[K] | undefined): void {
  if (value !== undefined) msg[key] = value;
}

/** Decodes one UDP payload into a plain message; throws DhcpDecodeError on malformed bytes. */
export function decodeDhcpPacket(buf: Buffer, start = 0, length = buf.length - start): DhcpMessage {
  return new DhcpPacketView().decode(buf, start, length).toMessage();
}

// Re-exported so callers of the codec need one import for the sub-option codes too.
export { RelaySubOption };

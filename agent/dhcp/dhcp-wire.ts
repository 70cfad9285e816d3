// Small byte-level helpers shared by the DHCP frame and packet codecs (addresses, MACs, text, option 82).
import { RelaySubOption } from './dhcp-option-codes';

/** Big-endian unsigned 32-bit read; caller guarantees at+4 <= buf.length. */
export function readU32(buf: Buffer, at: number): number {
  return ((buf[at] << 24) | (buf[at + 1] << 16) | (buf[at + 2] << 8) | buf[at + 3]) >>> 0;
}

export function formatIpv4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/** Dotted quad to an unsigned 32-bit number; undefined when it is not one. */
export function parseIpv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    v = v * 256 + n;
  }
  return v;
}

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function formatHex(buf: Buffer, from: number, to: number): string {
  let s = '';
  for (let i = from; i < to; i++) s += HEX[buf[i]];
  return s;
}

export function formatMac(buf: Buffer, at: number, length: number): string {
  let s = '';
  for (let i = 0; i < length; i++) s += (i ? ':' : '') + HEX[buf[at + i]];
  return s;
}

/** A 48-bit MAC number (see DhcpPacketView.macNumber) as colon hex. */
export function macNumberToText(mac: number): string {
  const hi = Math.floor(mac / 0x100000000);
  const lo = mac >>> 0;
  return [hi >>> 8, hi & 255, lo >>> 24, (lo >>> 16) & 255, (lo >>> 8) & 255, lo & 255].map((b) => HEX[b]).join(':');
}

/** Colon, dash or bare hex MAC (any length up to 16 bytes) to bytes; undefined when malformed. */
export function parseMac(text: string): Buffer | undefined {
  const hex = text.replace(/[:-]/g, '').toLowerCase();
  if (hex.length === 0 || hex.length > 32 || hex.length % 2 !== 0 || !/^[0-9a-f]+$/.test(hex)) return undefined;
  return Buffer.from(hex, 'hex');
}

/** Canonical lower-case colon form of a 6-byte MAC; undefined when malformed. */
export function normalizeMac(text: string): string | undefined {
  const bytes = parseMac(text);
  return bytes && bytes.length === 6 ? formatMac(bytes, 0, 6) : undefined;
}

/** The MAC as a 48-bit number, -1 when malformed. */
export function macTextToNumber(text: string): number {
  const bytes = parseMac(text);
  if (!bytes || bytes.length !== 6) return -1;
  return ((bytes[0] << 8) | bytes[1]) * 0x100000000 + readU32(bytes, 2);
}

/** Latin1 text of buf[from, to) without trailing NULs (C strings in sname/file and some clients' options). */
export function trimmedText(buf: Buffer, from: number, to: number): string {
  let end = to;
  while (end > from && buf[end - 1] === 0) end--;
  // A NUL inside means a C string followed by garbage: keep what precedes it.
  const nul = buf.indexOf(0, from);
  if (nul >= from && nul < end) end = nul;
  return buf.toString('latin1', from, end);
}

/** Relay agent information (option 82): circuit and remote ids plus every sub-option, as hex. */
export interface RelayAgentInfo {
  circuitId?: string;
  remoteId?: string;
  subOptions: Array<{ code: number; data: string }>;
}

/** Parses option 82 data already checked to be well-formed TLVs. */
export function parseRelayAgentInfo(data: Buffer): RelayAgentInfo {
  const info: RelayAgentInfo = { subOptions: [] };
  let p = 0;
  while (p + 2 <= data.length) {
    const code = data[p];
    const end = Math.min(p + 2 + data[p + 1], data.length);
    const hex = formatHex(data, p + 2, end);
    info.subOptions.push({ code, data: hex });
    if (code === RelaySubOption.CIRCUIT_ID && info.circuitId === undefined) info.circuitId = hex;
    if (code === RelaySubOption.REMOTE_ID && info.remoteId === undefined) info.remoteId = hex;
    p = end;
  }
  return info;
}

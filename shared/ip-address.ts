// Parsing and formatting of IPv4/IPv6 addresses and MAC addresses as byte arrays (pure, no I/O).

export type IpFamily = 4 | 6;

export interface ParsedIp {
  family: IpFamily;
  /** 4 bytes for IPv4, 16 for IPv6, network order. */
  bytes: Buffer;
}

const IPV4_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

function parseIpv4Bytes(text: string): Buffer | undefined {
  const m = IPV4_RE.exec(text);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p, i) => p > 255 || (m[i + 1].length > 1 && m[i + 1].startsWith('0')))) return undefined;
  return Buffer.from(parts);
}

function parseGroups(text: string): number[] | undefined {
  if (text === '') return [];
  const out: number[] = [];
  const parts = text.split(':');
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (i === parts.length - 1 && p.includes('.')) {
      const v4 = parseIpv4Bytes(p);
      if (!v4) return undefined;
      out.push(v4.readUInt16BE(0), v4.readUInt16BE(2));
      continue;
    }
    if (!/^[0-9a-f]{1,4}$/i.test(p)) return undefined;
    out.push(parseInt(p, 16));
  }
  return out;
}

function parseIpv6Bytes(text: string): Buffer | undefined {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const head = parseGroups(halves[0]);
  const tail = halves.length === 2 ? parseGroups(halves[1]) : [];
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const groups = [...head, ...new Array<number>(missing).fill(0), ...tail];
  const buf = Buffer.alloc(16);
  groups.forEach((g, i) => buf.writeUInt16BE(g, i * 2));
  return buf;
}

/** Parses a textual IPv4 or IPv6 address (no prefix, no zone); undefined when malformed. */
export function parseIp(text: string): ParsedIp | undefined {
  if (typeof text !== 'string') return undefined;
  const v4 = parseIpv4Bytes(text);
  if (v4) return { family: 4, bytes: v4 };
  if (!text.includes(':')) return undefined;
  const v6 = parseIpv6Bytes(text);
  return v6 ? { family: 6, bytes: v6 } : undefined;
}

/** Formats 4 or 16 address bytes in canonical text (RFC 5952 for IPv6). */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length !== 16) throw new RangeError(`an IP address has 4 or 16 bytes, not ${bytes.length}`);
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i] << 8) | bytes[i + 1]);
  // Longest run of two or more zero groups becomes "::" (first one wins on ties).
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Canonical text of an address ("fd00:0::1" -> "fd00::1"); undefined when malformed. */
export function canonicalIp(text: string): string | undefined {
  const p = parseIp(text);
  return p ? formatIp(p.bytes) : undefined;
}

/** Parses "aa:bb:cc:dd:ee:ff" (either case) into 6 bytes; undefined when malformed. */
export function parseMac(text: string): Buffer | undefined {
  if (typeof text !== 'string' || !MAC_RE.test(text)) return undefined;
  return Buffer.from(text.split(':').map((h) => parseInt(h, 16)));
}

/** Formats 6 bytes as lower-case "aa:bb:cc:dd:ee:ff". */
export function formatMac(bytes: Uint8Array): string {
  if (bytes.length !== 6) throw new RangeError(`a MAC address has 6 bytes, not ${bytes.length}`);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(':');
}

/** Host prefix length of a family: 32 for IPv4, 128 for IPv6. */
export function hostPrefixLength(family: IpFamily): number {
  return family === 4 ? 32 : 128;
}

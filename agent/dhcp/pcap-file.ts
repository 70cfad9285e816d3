// Reads and writes classic libpcap capture files (the tcpdump -w format): fixtures, replay traffic, debugging dumps.
import { InvalidArgumentError } from '../../shared/errors';

export const LINKTYPE_ETHERNET = 1;
const MAGIC_MICROS = 0xa1b2c3d4;
const MAGIC_NANOS = 0xa1b23c4d;
const GLOBAL_HEADER_BYTES = 24;
const RECORD_HEADER_BYTES = 16;
const DEFAULT_SNAPLEN = 262144;

export interface PcapRecord {
  /** Capture time in microseconds since the epoch. */
  timestampUs: number;
  /** Length on the wire; longer than data when the capture was cut at the snap length. */
  originalLength: number;
  data: Buffer;
}

export interface PcapFile {
  linkType: number;
  records: PcapRecord[];
}

/** Parses a whole pcap file (either byte order, micro- or nanosecond stamps). */
export function readPcapFile(buf: Buffer): PcapFile {
  if (buf.length < GLOBAL_HEADER_BYTES) throw new InvalidArgumentError('pcap', 'shorter than the global header');
  const magicLe = buf.readUInt32LE(0);
  const magicBe = buf.readUInt32BE(0);
  const le = magicLe === MAGIC_MICROS || magicLe === MAGIC_NANOS;
  if (!le && magicBe !== MAGIC_MICROS && magicBe !== MAGIC_NANOS) {
    throw new InvalidArgumentError('pcap', 'not a pcap file (bad magic)');
  }
  const nanos = (le ? magicLe : magicBe) === MAGIC_NANOS;
  const u32 = (at: number) => (le ? buf.readUInt32LE(at) : buf.readUInt32BE(at));
  const linkType = u32(20) & 0x0fffffff;
  const records: PcapRecord[] = [];
  let p = GLOBAL_HEADER_BYTES;
  while (p + RECORD_HEADER_BYTES <= buf.length) {
    const sec = u32(p);
    const frac = u32(p + 4);
    const capLen = u32(p + 8);
    const origLen = u32(p + 12);
    const from = p + RECORD_HEADER_BYTES;
    if (from + capLen > buf.length) throw new InvalidArgumentError('pcap', `record at byte ${p} runs past the end of the file`);
    records.push({
      timestampUs: sec * 1e6 + (nanos ? Math.floor(frac / 1000) : frac),
      originalLength: origLen,
      data: Buffer.from(buf.subarray(from, from + capLen)),
    });
    p = from + capLen;
  }
  return { linkType, records };
}

/** Writes frames as a little-endian microsecond pcap file. */
export function writePcapFile(frames: Array<{ data: Buffer; timestampUs?: number }>, linkType = LINKTYPE_ETHERNET): Buffer {
  let size = GLOBAL_HEADER_BYTES;
  for (const f of frames) size += RECORD_HEADER_BYTES + f.data.length;
  const out = Buffer.alloc(size);
  out.writeUInt32LE(MAGIC_MICROS, 0);
  out.writeUInt16LE(2, 4);
  out.writeUInt16LE(4, 6);
  out.writeUInt32LE(DEFAULT_SNAPLEN, 16);
  out.writeUInt32LE(linkType, 20);
  let p = GLOBAL_HEADER_BYTES;
  frames.forEach((f, i) => {
    const ts = f.timestampUs ?? i;
    out.writeUInt32LE(Math.floor(ts / 1e6), p);
    out.writeUInt32LE(ts % 1e6, p + 4);
    out.writeUInt32LE(f.data.length, p + 8);
    out.writeUInt32LE(f.data.length, p + 12);
    f.data.copy(out, p + RECORD_HEADER_BYTES);
    p += RECORD_HEADER_BYTES + f.data.length;
  });
  return out;
}

// Memory-delta frames (pure): encode and decode, with every defensive check of the format
// (agent/replication/FORMAT.md). The checksum function is injected (xxh64 from the native addon)
// so this file stays free of OS bindings.
import { brotliCompressSync, brotliDecompressSync, constants as zc, deflateRawSync, inflateRawSync } from 'node:zlib';
import { Packr } from 'msgpackr';
import { CompressionBackoff } from './compression-backoff';
import { FrameError } from './frame-errors';

export const FRAME_MAGIC = 0x46424d55; // "UMBF" read as little-endian u32
export const FRAME_FORMAT_VERSION = 1;
export const FRAME_HEADER_BYTES = 24;
/** Default cap on one frame's body; frames are built far below it (FRAME_MAX_PAGES pages). */
export const DEFAULT_MAX_FRAME_BYTES = 8 * 1024 * 1024;
/** Pages per frame at most, whatever their size after compression. */
export const FRAME_MAX_PAGES = 256;

/** Payload compression. brotli-0 was the fastest with a useful ratio in our measurement (FORMAT.md). */
export type FrameCodecName = 'none' | 'brotli-0' | 'deflate-1';
export const FRAME_CODECS: readonly FrameCodecName[] = ['none', 'brotli-0', 'deflate-1'];
export const DEFAULT_FRAME_CODEC: FrameCodecName = 'brotli-0';

export type Checksum64 = (data: Buffer) => bigint;

/** What a frame carries; page contents are already split into zero and data pages. */
export interface Frame extends FrameHeader {
  /** Pages whose content is all zeros (no payload). */
  zeroPages: Uint32Array;
  /** Pages with content, in the order of `data`. */
  dataPages: Uint32Array;
  /** dataPages.length * pageSizeBytes bytes, uncompressed. */
  data: Buffer;
}

interface WireBody {
  v: string;
  g: string;
  e: number;
  i: number;
  l: boolean;
  ps: number;
  pc: number;
  z: Buffer;
  d: Buffer;
  c: FrameCodecName;
  p: Buffer;
}

const packr = new Packr({ useRecords: false, moreTypes: false });

function indexesToBuffer(a: Uint32Array): Buffer {
  const b = Buffer.allocUnsafe(a.length * 4);
  for (let i = 0; i < a.length; i++) b.writeUInt32LE(a[i], i * 4);
  return b;
}

function bufferToIndexes(b: Buffer, field: string): Uint32Array {
  if (b.length % 4 !== 0) throw new FrameError('MALFORMED', `${field} is not a whole number of u32`);
  const out = new Uint32Array(b.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = b.readUInt32LE(i * 4);
  return out;
}

/** zlib's smallest output chunk. */
const MIN_CHUNK_BYTES = 64;
/** Room for a compressor's framing beyond the input (brotli and deflate add far less on 1 MiB). */
const COMPRESS_SLACK_BYTES = 4096;

// Output in one chunk of the size it can reach: zlib's default 16 KiB chunks meant some 64
// allocations and a concatenated copy per 1 MiB frame, all of it garbage a moment later.
function compress(codec: FrameCodecName, data: Buffer): Buffer {
  const chunkSize = Math.max(MIN_CHUNK_BYTES, data.length + COMPRESS_SLACK_BYTES);
  switch (codec) {
    case 'none':
      return data;
    case 'brotli-0':
      // A 1 MiB window (a frame's payload at most): the shadow's decoder then allocates a 1 MiB ring
      // buffer per frame instead of 4 MiB; measured 2.5x faster decompression of compressible pages.
      return brotliCompressSync(data, { chunkSize, params: { [zc.BROTLI_PARAM_QUALITY]: 0, [zc.BROTLI_PARAM_LGWIN]: 20, [zc.BROTLI_PARAM_SIZE_HINT]: data.length } });
    case 'deflate-1':
      return deflateRawSync(data, { level: 1, chunkSize });
  }
}

function decompress(codec: FrameCodecName, data: Buffer, expectedBytes: number): Buffer {
  // A chunk the output fills exactly makes zlib allocate another (empty) one: a little more room.
  const limits = { maxOutputLength: Math.max(expectedBytes, 1), chunkSize: expectedBytes + MIN_CHUNK_BYTES };
  try {
    switch (codec) {
      case 'none':
        return data;
      case 'brotli-0':
        return brotliDecompressSync(data, limits);
      case 'deflate-1':
        return inflateRawSync(data, limits);
    }
  } catch (err) {
    throw new FrameError('MALFORMED', `payload does not decompress (${codec}): ${(err as Error).message}`);
  }
}

export interface FrameCodecOptions {
  checksum: Checksum64;
  codec?: FrameCodecName;
  maxFrameBytes?: number;
}

/**
 * Bytes kept free in front of a frame built by encodeFrom(): a transport may put its own prefixes
 * there (gRPC: the protobuf field prefix, up to 5 bytes, and the 5-byte message prefix).
 */
export const FRAME_HEADROOM_BYTES = 16;
/** ArrayBuffers whose first FRAME_HEADROOM_BYTES before the frame are free for a transport prefix. */
const withHeadroom = new WeakSet<ArrayBufferLike>();

/**
 * `n` bytes in front of `frame` that the caller may overwrite (a frame of encodeFrom(), n at most
 * FRAME_HEADROOM_BYTES), or undefined for any other buffer.
 */
export function frameHeadroom(frame: Buffer, n: number): Buffer | undefined {
  if (n > FRAME_HEADROOM_BYTES || frame.byteOffset < n || !withHeadroom.has(frame.buffer)) return undefined;
  return Buffer.from(frame.buffer, frame.byteOffset - n, n);
}

/** A frame's identity and position (what encodeFrom() needs besides the pages). */
export interface FrameHeader {
  vmId: string;
  /** Identity of the source's replication session; epochs only compare within one generation. */
  generation: string;
  epoch: number;
  /** Position of this frame inside its epoch, from 0. */
  index: number;
  /** Last frame of the epoch: once applied, the epoch is complete. */
  last: boolean;
  pageSizeBytes: number;
  /** Size of the whole guest RAM in pages (the receiver checks it against its image). */
  imagePageCount: number;
  /**
   * Header flag bit 0: acknowledge the epoch once applied, make it durable after (a flush of a
   * paused guest, where the ack is on the switchover's critical path). Absent when not set.
   */
  ackOnApply?: boolean;
}

/** Header flags (u16 at offset 6). */
export const FRAME_FLAG_ACK_ON_APPLY = 1;

/** Where the payload of an encodeFrom() frame starts: headroom, header, fixmap, key "p", bin32 header. */
const PAYLOAD_OFFSET = FRAME_HEADROOM_BYTES + FRAME_HEADER_BYTES + 1 + 2 + 5;

/** Minimal msgpack writer for the body's small fields (the same values msgpackr would decode). */
class BodyWriter {
  constructor(readonly buf: Buffer, public pos: number) {}
  str(s: string): void {
    const n = Buffer.byteLength(s);
    if (n < 32) this.buf[this.pos++] = 0xa0 | n;
    else if (n < 256) {
      this.buf[this.pos++] = 0xd9;
      this.buf[this.pos++] = n;
    } else {
      this.buf[this.pos++] = 0xda;
      this.pos = this.buf.writeUInt16BE(n, this.pos);
    }
    this.pos += this.buf.write(s, this.pos);
  }
  uint(v: number): void {
    if (v < 128) this.buf[this.pos++] = v;
    else if (v < 0x100) {
      this.buf[this.pos++] = 0xcc;
      this.buf[this.pos++] = v;
    } else if (v < 0x10000) {
      this.buf[this.pos++] = 0xcd;
      this.pos = this.buf.writeUInt16BE(v, this.pos);
    } else if (v <= 0xffffffff) {
      this.buf[this.pos++] = 0xce;
      this.pos = this.buf.writeUInt32BE(v, this.pos);
    } else {
      this.buf[this.pos++] = 0xcb; // float64: exact for safe integers, decoded as a number
      this.pos = this.buf.writeDoubleBE(v, this.pos);
    }
  }
  bool(v: boolean): void {
    this.buf[this.pos++] = v ? 0xc3 : 0xc2;
  }
  binHeader(n: number): void {
    this.buf[this.pos++] = 0xc6;
    this.pos = this.buf.writeUInt32BE(n, this.pos);
  }
  indexes(a: number[]): void {
    this.binHeader(a.length * 4);
    for (const v of a) this.pos = this.buf.writeUInt32LE(v, this.pos);
  }
}

/** Upper bound of the body's fields other than the payload. */
function smallFieldsBytes(h: Pick<FrameHeader, 'vmId' | 'generation'>, pages: number): number {
  return 64 + Buffer.byteLength(h.vmId) + Buffer.byteLength(h.generation) + 5 + 5 + pages * 4 + 16;
}

/** Memory encodeFrom() asks `alloc` for, at most, for a frame of `pages` uncompressed pages. */
export function frameBufferBytes(h: Pick<FrameHeader, 'vmId' | 'generation' | 'pageSizeBytes'>, pages: number): number {
  return PAYLOAD_OFFSET + pages * h.pageSizeBytes + smallFieldsBytes(h, pages);
}

let zeroPageBuf = Buffer.alloc(0);
function isZero(buf: Buffer, offset: number, size: number): boolean {
  if (zeroPageBuf.length !== size) zeroPageBuf = Buffer.alloc(size);
  return buf.compare(zeroPageBuf, 0, size, offset, offset + size) === 0;
}

/** Memory and policy of one encodeFrom() call. */
export interface EncodeFromOptions {
  /** At least pages.length * pageSizeBytes bytes, used by compressing codecs (else one is allocated). */
  scratch?: Buffer;
  /**
   * Provides the frame's memory: a buffer of at least the given size, in its own ArrayBuffer (e.g.
   * from a pool); by default a new one. The frame is a view into it.
   */
  alloc?: (bytes: number) => Buffer;
  /** Which frames to try compressing; by default this codec's own (shared by its calls). */
  backoff?: CompressionBackoff;
}

export class FrameCodec {
  readonly codec: FrameCodecName;
  readonly maxFrameBytes: number;
  private readonly checksum: Checksum64;
  private readonly backoff = new CompressionBackoff();

  constructor(options: FrameCodecOptions) {
    this.checksum = options.checksum;
    this.codec = options.codec ?? DEFAULT_FRAME_CODEC;
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  }

  encode(frame: Frame): Buffer {
    const body: WireBody = {
      v: frame.vmId,
      g: frame.generation,
      e: frame.epoch,
      i: frame.index,
      l: frame.last,
      ps: frame.pageSizeBytes,
      pc: frame.imagePageCount,
      z: indexesToBuffer(frame.zeroPages),
      d: indexesToBuffer(frame.dataPages),
      c: this.codec,
      p: compress(this.codec, frame.data),
    };
    const packed = packr.pack(body);
    if (packed.length > this.maxFrameBytes) throw new FrameError('TOO_LARGE', `encoded body ${packed.length} > ${this.maxFrameBytes} bytes`);
    const header = Buffer.alloc(FRAME_HEADER_BYTES);
    header.writeUInt32LE(FRAME_MAGIC, 0);
    header.writeUInt16LE(FRAME_FORMAT_VERSION, 4);
    header.writeUInt16LE(frame.ackOnApply ? FRAME_FLAG_ACK_ON_APPLY : 0, 6);
    header.writeUInt32LE(packed.length, 8);
    header.writeUInt32LE(0, 12);
    header.writeBigUInt64LE(this.checksum(packed), 16);
    return Buffer.concat([header, packed]);
  }

  /**
   * Builds and encodes one frame of `pages` (sorted) in a single buffer: `fill` writes the pages'
   * contents (pages.length * pageSizeBytes bytes) into the buffer it is given, zero pages are found
   * and squeezed out in place, and with codec `none` the payload is never copied again. Same wire
   * format as encode(buildFrame(...)) (msgpack maps are unordered; the payload comes first).
   * With a compressing codec, a frame whose payload does not shrink by MIN_COMPRESSION_SAVING goes
   * raw (codec `none`: the receiver reads each frame's own codec), and `backoff` decides which
   * frames are tried at all. See EncodeFromOptions for the memory it uses.
   */
  encodeFrom(h: FrameHeader, pages: Uint32Array, fill: (into: Buffer) => void, options: EncodeFromOptions = {}): Buffer {
    const { scratch, alloc = Buffer.allocUnsafeSlow, backoff = this.backoff } = options;
    const ps = h.pageSizeBytes;
    const rawBytes = pages.length * ps;
    // Decided before the pages are read: a frame that is not tried is read straight into its place,
    // like codec none (no copy of its payload).
    const compressing = this.codec !== 'none' && backoff.shouldTry();
    let codec = compressing ? this.codec : 'none';
    const tailMax = smallFieldsBytes(h, pages.length);
    let out: Buffer;
    let src: Buffer;
    if (compressing) {
      src = scratch && scratch.length >= rawBytes ? scratch.subarray(0, rawBytes) : Buffer.allocUnsafe(rawBytes);
      out = Buffer.alloc(0);
    } else {
      // Its own ArrayBuffer (not Node's shared pool), so the headroom in front is ours to lend.
      out = alloc(PAYLOAD_OFFSET + rawBytes + tailMax);
      src = out.subarray(PAYLOAD_OFFSET, PAYLOAD_OFFSET + rawBytes);
    }
    fill(src);
    const zero: number[] = [];
    const data: number[] = [];
    let w = 0;
    for (let k = 0; k < pages.length; k++) {
      const off = k * ps;
      if (isZero(src, off, ps)) {
        zero.push(pages[k]);
        continue;
      }
      if (w !== off) src.copyWithin(w, off, off + ps);
      data.push(pages[k]);
      w += ps;
    }
    let payloadLen = w;
    if (compressing) {
      const packed = w > 0 ? compress(this.codec, src.subarray(0, w)) : undefined;
      const payload = packed && backoff.record(w, packed.length) ? packed : src.subarray(0, w);
      if (payload !== packed) codec = 'none';
      payloadLen = payload.length;
      out = alloc(PAYLOAD_OFFSET + payloadLen + tailMax);
      payload.copy(out, PAYLOAD_OFFSET);
    }
    const bodyStart = FRAME_HEADROOM_BYTES + FRAME_HEADER_BYTES;
    const b = new BodyWriter(out, bodyStart);
    b.buf[b.pos++] = 0x8b; // fixmap, 11 entries
    b.str('p');
    b.binHeader(payloadLen);
    b.pos += payloadLen;
    b.str('v');
    b.str(h.vmId);
    b.str('g');
    b.str(h.generation);
    b.str('e');
    b.uint(h.epoch);
    b.str('i');
    b.uint(h.index);
    b.str('l');
    b.bool(h.last);
    b.str('ps');
    b.uint(ps);
    b.str('pc');
    b.uint(h.imagePageCount);
    b.str('z');
    b.indexes(zero);
    b.str('d');
    b.indexes(data);
    b.str('c');
    b.str(codec);
    const bodyLen = b.pos - bodyStart;
    if (bodyLen > this.maxFrameBytes) throw new FrameError('TOO_LARGE', `encoded body ${bodyLen} > ${this.maxFrameBytes} bytes`);
    const body = out.subarray(bodyStart, b.pos);
    const hdr = FRAME_HEADROOM_BYTES;
    out.writeUInt32LE(FRAME_MAGIC, hdr);
    out.writeUInt16LE(FRAME_FORMAT_VERSION, hdr + 4);
    out.writeUInt16LE(h.ackOnApply ? FRAME_FLAG_ACK_ON_APPLY : 0, hdr + 6);
    out.writeUInt32LE(bodyLen, hdr + 8);
    out.writeUInt32LE(0, hdr + 12);
    out.writeBigUInt64LE(this.checksum(body), hdr + 16);
    withHeadroom.add(out.buffer);
    return out.subarray(hdr, b.pos);
  }

  /** Checks magic, version, size cap and checksum before decoding anything; then every field. */
  decode(buf: Buffer): Frame {
    if (buf.length < FRAME_HEADER_BYTES) throw new FrameError('TRUNCATED', `${buf.length} bytes, header needs ${FRAME_HEADER_BYTES}`);
    const magic = buf.readUInt32LE(0);
    if (magic !== FRAME_MAGIC) throw new FrameError('BAD_MAGIC', `magic 0x${magic.toString(16)}`);
    const version = buf.readUInt16LE(4);
    if (version !== FRAME_FORMAT_VERSION) throw new FrameError('UNSUPPORTED_VERSION', `version ${version}, this build reads ${FRAME_FORMAT_VERSION}`);
    const bodyBytes = buf.readUInt32LE(8);
    if (bodyBytes > this.maxFrameBytes || buf.length - FRAME_HEADER_BYTES > this.maxFrameBytes) {
      throw new FrameError('TOO_LARGE', `body ${bodyBytes} bytes > cap ${this.maxFrameBytes}`);
    }
    if (buf.length - FRAME_HEADER_BYTES !== bodyBytes) {
      throw new FrameError('TRUNCATED', `body is ${buf.length - FRAME_HEADER_BYTES} bytes, header says ${bodyBytes}`);
    }
    const body = buf.subarray(FRAME_HEADER_BYTES);
    if (this.checksum(body) !== buf.readBigUInt64LE(16)) throw new FrameError('CHECKSUM_MISMATCH', 'xxh64 of the body differs');
    let w: WireBody;
    try {
      w = packr.unpack(body) as WireBody;
    } catch (err) {
      throw new FrameError('MALFORMED', `body is not msgpack: ${(err as Error).message}`);
    }
    const frame = validate(w);
    // Unknown flag bits are ignored: they are hints, never needed to read the frame right.
    if (buf.readUInt16LE(6) & FRAME_FLAG_ACK_ON_APPLY) frame.ackOnApply = true;
    return frame;
  }
}

function isUint(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}

function validate(w: WireBody): Frame {
  if (typeof w !== 'object' || w === null) throw new FrameError('MALFORMED', 'body is not a map');
  if (typeof w.v !== 'string' || w.v.length === 0) throw new FrameError('MALFORMED', 'vmId missing');
  if (typeof w.g !== 'string' || w.g.length === 0) throw new FrameError('MALFORMED', 'generation missing');
  if (!isUint(w.e) || w.e < 1) throw new FrameError('MALFORMED', 'epoch must be a positive integer');
  if (!isUint(w.i)) throw new FrameError('MALFORMED', 'index must be a non-negative integer');
  if (typeof w.l !== 'boolean') throw new FrameError('MALFORMED', 'last must be a boolean');
  if (!isUint(w.ps) || w.ps < 512 || (w.ps & (w.ps - 1)) !== 0) throw new FrameError('MALFORMED', `pageSizeBytes ${w.ps} invalid`);
  if (!isUint(w.pc) || w.pc < 1) throw new FrameError('MALFORMED', 'imagePageCount must be positive');
  if (!FRAME_CODECS.includes(w.c)) throw new FrameError('MALFORMED', `unknown codec ${String(w.c)}`);
  if (!Buffer.isBuffer(w.z) || !Buffer.isBuffer(w.d) || !Buffer.isBuffer(w.p)) throw new FrameError('MALFORMED', 'page lists or payload not bytes');
  const zeroPages = bufferToIndexes(w.z, 'zeroPages');
  const dataPages = bufferToIndexes(w.d, 'dataPages');
  if (zeroPages.length + dataPages.length > FRAME_MAX_PAGES) throw new FrameError('MALFORMED', `more than ${FRAME_MAX_PAGES} pages`);
  for (const list of [zeroPages, dataPages]) {
    for (const p of list) if (p >= w.pc) throw new FrameError('MALFORMED', `page ${p} beyond image of ${w.pc} pages`);
  }
  const expected = dataPages.length * w.ps;
  const data = decompress(w.c, w.p, expected);
  if (data.length !== expected) throw new FrameError('MALFORMED', `payload is ${data.length} bytes, ${dataPages.length} pages need ${expected}`);
  return {
    vmId: w.v,
    generation: w.g,
    epoch: w.e,
    index: w.i,
    last: w.l,
    pageSizeBytes: w.ps,
    imagePageCount: w.pc,
    zeroPages,
    dataPages,
    data,
  };
}

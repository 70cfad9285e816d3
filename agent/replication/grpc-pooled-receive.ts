// Receiving large gRPC messages into reused memory. grpc-js's server joins each message from the
// HTTP/2 DATA chunks (16 KiB each) with Buffer.concat into a fresh allocation: for the delta
// stream, a new 1 MiB buffer per frame, whose first touch page-faults 256 pages, and external
// memory churn that drives V8's garbage collections (profiled on the shadow: the join cost more
// than half of the image write). Here a call's message decoder is replaced by one that copies
// large messages straight from the chunks into a buffer taken from a pool; the receiver hands the
// buffer back once it is done with the message (ReceiveBufferPool.release).
// grpc-js has no public hook for this: the decoder is reached through its call internals (the
// call's `decoder`, a StreamDecoder that has not read anything yet). When they are not there,
// nothing changes (usePooledReceive() returns false) and messages are joined as before
// (test/unit/replication/grpc-pooled-receive.test.ts pins this against the shipped grpc-js).

/** gRPC's per-message prefix: compressed flag (1 byte) and big-endian length (4 bytes). */
const PREFIX_BYTES = 5;
const MAX_DEPTH = 8;

export interface ReceiveBufferPoolOptions {
  /** Messages at least this long (bytes, without the prefix) go into pooled memory. */
  minMessageBytes?: number;
  /** Free buffers kept at most; more are left to the GC when released. */
  maxFree?: number;
  /** Smallest buffer allocated (a frame of 256 pages plus its fields fits in the default). */
  minBufferBytes?: number;
}

/** Reusable buffers for received messages, each lent out whole and returned by release(). */
export class ReceiveBufferPool {
  readonly minMessageBytes: number;
  private readonly maxFree: number;
  private readonly minBufferBytes: number;
  private readonly free: Buffer[] = [];
  private readonly lent = new WeakSet<ArrayBufferLike>();
  /** Buffers allocated since the pool was made (for tests and diagnostics). */
  allocated = 0;

  constructor(o: ReceiveBufferPoolOptions = {}) {
    this.minMessageBytes = o.minMessageBytes ?? 64 * 1024;
    this.maxFree = o.maxFree ?? 16;
    this.minBufferBytes = o.minBufferBytes ?? (1 << 20) + 64 * 1024;
  }

  /** A buffer of exactly `bytes` bytes at the start of pooled memory (its own ArrayBuffer). */
  take(bytes: number): Buffer {
    let whole: Buffer | undefined;
    for (let i = this.free.length - 1; i >= 0; i--) {
      if (this.free[i].length >= bytes) {
        whole = this.free[i];
        this.free.splice(i, 1);
        break;
      }
    }
    if (!whole) {
      whole = Buffer.allocUnsafeSlow(Math.max(bytes, this.minBufferBytes));
      this.allocated++;
    }
    this.lent.add(whole.buffer);
    return whole.subarray(0, bytes);
  }

  /**
   * Returns the pooled memory `view` points into (any view of a taken buffer); the caller must hold
   * no view of it afterwards. Anything else, or a second release, is ignored. Returns whether it
   * was taken back.
   */
  release(view: Uint8Array | undefined): boolean {
    if (!view || !this.lent.has(view.buffer)) return false;
    this.lent.delete(view.buffer);
    if (this.free.length < this.maxFree) this.free.push(Buffer.from(view.buffer, 0, view.buffer.byteLength));
    return true;
  }

  /** Drops the free buffers (left to the GC), e.g. when no stream is receiving any more. */
  clear(): void {
    this.free.length = 0;
  }

  get freeCount(): number {
    return this.free.length;
  }
}

/**
 * Same contract as grpc-js's StreamDecoder (write() returns the complete messages, prefix
 * included; a message above the size limit throws): messages of at least pool.minMessageBytes are
 * copied from the chunks into pooled memory as they arrive, smaller ones into a new buffer.
 */
export class PooledMessageDecoder {
  private readonly prefix = Buffer.alloc(PREFIX_BYTES);
  private prefixHave = 0;
  private message: Buffer | undefined;
  private messageHave = 0;

  constructor(
    private readonly maxReadMessageLength: number,
    private readonly pool: ReceiveBufferPool,
  ) {}

  write(data: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let pos = 0;
    while (pos < data.length) {
      if (!this.message) {
        const n = Math.min(PREFIX_BYTES - this.prefixHave, data.length - pos);
        data.copy(this.prefix, this.prefixHave, pos, pos + n);
        this.prefixHave += n;
        pos += n;
        if (this.prefixHave < PREFIX_BYTES) break;
        const size = this.prefix.readUInt32BE(1);
        if (this.maxReadMessageLength !== -1 && size > this.maxReadMessageLength) {
          throw new Error(`Received message larger than max (${size} vs ${this.maxReadMessageLength})`);
        }
        this.prefixHave = 0;
        const m = size >= this.pool.minMessageBytes ? this.pool.take(size + PREFIX_BYTES) : Buffer.allocUnsafe(size + PREFIX_BYTES);
        this.prefix.copy(m, 0);
        if (size === 0) {
          out.push(m);
          continue;
        }
        this.message = m;
        this.messageHave = PREFIX_BYTES;
      } else {
        const n = Math.min(this.message.length - this.messageHave, data.length - pos);
        data.copy(this.message, this.messageHave, pos, pos + n);
        this.messageHave += n;
        pos += n;
        if (this.messageHave === this.message.length) {
          out.push(this.message);
          this.message = undefined;
        }
      }
    }
    return out;
  }
}

interface DecoderHolder {
  decoder?: { write?: unknown; maxReadMessageLength?: unknown; readState?: unknown; readPartialMessage?: unknown; constructor?: { name?: string } };
  nextCall?: unknown;
}

/**
 * Makes a grpc-js server call decode its incoming messages with a PooledMessageDecoder. Call it in
 * the handler, before reading. Returns false (and changes nothing) when the call's decoder is not
 * a fresh grpc-js StreamDecoder where expected.
 */
export function usePooledReceive(call: unknown, pool: ReceiveBufferPool): boolean {
  let c = (call as { call?: unknown } | undefined)?.call as DecoderHolder | undefined;
  for (let depth = 0; c && !c.decoder && c.nextCall && depth < MAX_DEPTH; depth++) c = c.nextCall as DecoderHolder;
  const d = c?.decoder;
  if (!c || !d || d.constructor?.name !== 'StreamDecoder' || typeof d.write !== 'function') return false;
  // Only a decoder that has not started a message (state NO_DATA, nothing buffered) is replaced.
  if (typeof d.maxReadMessageLength !== 'number' || d.readState !== 0 || !Array.isArray(d.readPartialMessage) || d.readPartialMessage.length) return false;
  c.decoder = new PooledMessageDecoder(d.maxReadMessageLength, pool) as unknown as DecoderHolder['decoder'];
  return true;
}

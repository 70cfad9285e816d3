// Sending one cached answer to many callers without copying it per call. grpc-js frames every
// response (a 5-byte header, then the message) into a freshly allocated buffer: for a cached
// ListHosts answer of ~28 KB polled 1,000 times a second, that allocation and copy were a fifth of
// the coordinator's CPU (measured with --cpu-prof under coordinator-load) and most of its garbage.
// Message bytes registered here are framed once; every later call sends the same framed buffer
// (HTTP/2 writes only read it). grpc-js has no public hook for this, so it wraps the server call's
// serializeMessage; if a grpc-js upgrade moves it, nothing is wrapped and calls frame as before
// (test/unit/shared/grpc-frame-reuse.test.ts fails then).
import * as serverInterceptors from '@grpc/grpc-js/build/src/server-interceptors';

const GRPC_FRAME_HEADER_BYTES = 5;

/** Framed copies of registered message buffers, forgotten with the message. */
const framed = new WeakMap<Buffer, Buffer>();
const reusable = new WeakSet<Buffer>();

export function frameMessage(message: Buffer): Buffer {
  const out = Buffer.allocUnsafe(message.byteLength + GRPC_FRAME_HEADER_BYTES);
  out.writeUInt8(0, 0); // not compressed
  out.writeUInt32BE(message.byteLength, 1);
  message.copy(out, GRPC_FRAME_HEADER_BYTES);
  return out;
}

/** Marks serialized response bytes that will be sent again unchanged (they must not be mutated). */
export function markReusable(message: Buffer): void {
  reusable.add(message);
}

/** The frame to send for `message`: the cached one for registered bytes, `undefined` otherwise. */
export function reusableFrame(message: Buffer): Buffer | undefined {
  if (!reusable.has(message)) return undefined;
  let f = framed.get(message);
  if (!f) {
    f = frameMessage(message);
    framed.set(message, f);
  }
  return f;
}

interface ServerCallProto {
  serializeMessage?: (this: { handler: { serialize: (v: unknown) => Buffer } }, value: unknown) => Buffer;
  __umbraFrameReuse?: boolean;
}

let installed: boolean | undefined;

/** Installs the wrapper once; returns whether grpc-js's server call could be wrapped. */
export function installFrameReuse(): boolean {
  if (installed !== undefined) return installed;
  const proto = (serverInterceptors as unknown as { BaseServerInterceptingCall?: { prototype: ServerCallProto } }).BaseServerInterceptingCall?.prototype;
  const original = proto?.serializeMessage;
  // Only the framing we know (serialize, then a plain 5-byte header): a grpc-js that compresses or
  // frames otherwise keeps its own code.
  const src = typeof original === 'function' ? Function.prototype.toString.call(original) : '';
  if (!proto || !/this\.handler\.serialize\(value\)/.test(src) || !/byteLength \+ 5/.test(src)) return (installed = false);
  if (!proto.__umbraFrameReuse) {
    proto.serializeMessage = function serializeMessage(value: unknown): Buffer {
      const message = this.handler.serialize(value);
      return reusableFrame(message) ?? frameMessage(message);
    };
    proto.__umbraFrameReuse = true;
  }
  return (installed = true);
}

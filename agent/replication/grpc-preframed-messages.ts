// Sending a large gRPC message without grpc-js copying it: grpc-js frames every outgoing message
// (1 flag byte, 4 length bytes) by copying it into a new buffer, which for the delta stream was a
// second 1 MiB copy and allocation per frame on the source (after reading the pages into the
// frame), and twice the external memory churn that drives V8's garbage collections. A message
// marked here has those 5 bytes free in front of it in its own memory: the framing is written
// there and the message goes to HTTP/2 as it is. Unmarked messages keep grpc-js's own path.
// grpc-js has no public hook for this, so it is reached through its identity compression handler
// (the one used when no compression is configured); if an upgrade moves it, install() reports
// false and messages are copied as before (test/unit/replication/grpc-preframed-messages.test.ts).

/** gRPC's per-message prefix: compressed flag (1 byte) and big-endian length (4 bytes). */
export const GRPC_MESSAGE_PREFIX_BYTES = 5;

const marked = new WeakSet<Buffer>();
let installed: boolean | undefined;

type WriteMessage = (this: unknown, message: Buffer, compress: boolean) => Promise<Buffer>;

/**
 * Marks a serialized message whose GRPC_MESSAGE_PREFIX_BYTES bytes in front of it (same
 * ArrayBuffer) are free to overwrite. Only effective once installPreframedMessages() returned true.
 */
export function markPreframed(message: Buffer): void {
  if (message.byteOffset >= GRPC_MESSAGE_PREFIX_BYTES) marked.add(message);
}

/** The framed message, sharing `message`'s memory (its prefix written in front of it). */
function frameInPlace(message: Buffer): Buffer {
  const framed = Buffer.from(message.buffer, message.byteOffset - GRPC_MESSAGE_PREFIX_BYTES, message.length + GRPC_MESSAGE_PREFIX_BYTES);
  framed[0] = 0; // not compressed
  framed.writeUInt32BE(message.length, 1);
  return framed;
}

/**
 * Makes grpc-js pass marked messages through its identity framing without a copy (once per
 * process). Returns whether it is in place. Channels with message compression configured do not
 * use the identity handler and are not affected.
 */
export function installPreframedMessages(): boolean {
  if (installed !== undefined) return installed;
  installed = false;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require('@grpc/grpc-js/build/src/compression-filter') as {
      CompressionFilter?: new (options: object, shared: object) => { sendCompression?: object };
    };
    if (typeof mod.CompressionFilter !== 'function') return false;
    const identity = new mod.CompressionFilter({}, {}).sendCompression;
    const proto = identity && (Object.getPrototypeOf(identity) as { constructor?: { name?: string }; writeMessage?: WriteMessage });
    if (!proto || proto.constructor?.name !== 'IdentityHandler' || typeof proto.writeMessage !== 'function') return false;
    const original = proto.writeMessage;
    proto.writeMessage = function (this: unknown, message: Buffer, compress: boolean): Promise<Buffer> {
      if (Buffer.isBuffer(message) && marked.has(message)) {
        marked.delete(message);
        return Promise.resolve(frameInPlace(message));
      }
      return original.call(this, message, compress);
    };
    installed = true;
  } catch {
    installed = false;
  }
  return installed;
}

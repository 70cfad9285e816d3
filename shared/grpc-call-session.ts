// The HTTP/2 session (one TLS connection) a grpc-js server call arrived on. grpc-js exposes no
// public accessor, so this walks its call internals; callers must work without it (undefined).
import type * as http2 from 'node:http2';

const MAX_DEPTH = 8;

export function callSession(call: unknown): http2.Http2Session | undefined {
  let c = (call as { call?: unknown } | undefined)?.call as { stream?: http2.Http2Stream; nextCall?: unknown } | undefined;
  for (let depth = 0; c && !c.stream && c.nextCall && depth < MAX_DEPTH; depth++) c = c.nextCall as typeof c;
  const session = c?.stream?.session;
  return session && !session.destroyed ? session : undefined;
}

// ShadowChannel over a gRPC bidi stream to a shadow agent's ReplicationService (mTLS credentials
// are passed in by the daemon). Write back-pressure comes from grpc-js's write() return value.
import * as grpc from '@grpc/grpc-js';
import { serviceClient } from '../../shared/proto';
import type { FrameErrorCode } from '../../shared/frame-errors';
import { frameHeadroom } from '../../shared/frame-codec';
import { digestFromWire } from './image-digest';
import { GRPC_MESSAGE_PREFIX_BYTES, installPreframedMessages, markPreframed } from './grpc-preframed-messages';
import type { ShadowChannel, ShadowChannelEvent, ShadowChannelFactory } from './shadow-channel';
import type { OpenReplication, ShadowErrorCode } from './replication-receiver';
import { REPLICATION_SERVICE_NAME } from './replication-service';

/** Frames are at most ~1 MiB (256 pages of 4 KiB); leave room for bigger pages. */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

const ERROR_CODES: Record<string, ShadowErrorCode> = {
  SHADOW_ERROR_CODE_DISK_FULL: 'DISK_FULL',
  SHADOW_ERROR_CODE_IO: 'IO',
  SHADOW_ERROR_CODE_REFUSED: 'REFUSED',
};

interface WireResponse {
  kind?: 'ready' | 'ack' | 'reject' | 'error';
  ready?: { resume_from_epoch: string; full_resend: boolean; reason: string; digest_block_bytes?: number; digest?: Uint8Array };
  ack?: { epoch: string };
  reject?: { epoch: string; index: number; code: string; detail: string };
  error?: { code: string; detail: string };
}

/** `imageBytes`: of the stream, to check a digest against (one that does not fit is ignored: every page is sent). */
function fromWire(m: WireResponse, imageBytes: number): ShadowChannelEvent | undefined {
  switch (m.kind) {
    case 'ready': {
      if (!m.ready) return undefined;
      const r = m.ready;
      const digest = r.full_resend && r.digest && r.digest.length > 0 ? digestFromWire(r.digest_block_bytes ?? 0, r.digest, imageBytes) : undefined;
      return { kind: 'ready', resumeFromEpoch: Number(r.resume_from_epoch), fullResend: r.full_resend, reason: r.reason, ...(digest ? { digest } : {}) };
    }
    case 'ack':
      return m.ack && { kind: 'ack', epoch: Number(m.ack.epoch) };
    case 'reject':
      return m.reject && { kind: 'reject', epoch: Number(m.reject.epoch), index: m.reject.index, code: m.reject.code as FrameErrorCode, detail: m.reject.detail };
    case 'error':
      return m.error && { kind: 'error', code: ERROR_CODES[m.error.code] ?? 'IO', detail: m.error.detail };
    default:
      return undefined;
  }
}

/** Field 2 (`frame`, length-delimited) of StreamMemoryDeltasRequest: tag byte then varint length. */
function framePrefix(len: number): Buffer {
  const bytes = [0x12];
  let v = len;
  while (v >= 0x80) {
    bytes.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  bytes.push(v);
  return Buffer.from(bytes);
}

/**
 * A request carrying one frame, serialized by hand: the protobuf prefix goes into the headroom
 * the frame encoder left in front of the frame, so the frame's bytes are not copied again here
 * (protobufjs would copy them into a new buffer), and the request is marked so that grpc-js
 * writes its own 5-byte message prefix in front of that (grpc-preframed-messages.ts) instead of
 * copying the request once more. Any other request goes through protobufjs.
 */
export function serializeFrameRequest(frame: Buffer): Buffer {
  const prefix = framePrefix(frame.length);
  const room = frameHeadroom(frame, prefix.length + GRPC_MESSAGE_PREFIX_BYTES);
  if (!room) return Buffer.concat([prefix, frame]);
  prefix.copy(room, GRPC_MESSAGE_PREFIX_BYTES);
  const request = Buffer.from(frame.buffer, frame.byteOffset - prefix.length, frame.length + prefix.length);
  markPreframed(request);
  return request;
}

/**
 * A factory of channels to the shadow agent at `endpoint` (host:port). One grpc client (one HTTP/2
 * connection) is shared by every stream the factory opens; call close() on the result to release it.
 */
export function grpcShadowChannelFactory(endpoint: string, credentials: grpc.ChannelCredentials): ShadowChannelFactory & { close(): void } {
  installPreframedMessages();
  const Client = serviceClient(REPLICATION_SERVICE_NAME);
  const client = new Client(endpoint, credentials, {
    // A link reconnects and resumes from the shadow's epoch itself; grpc-js's retry layer would
    // only keep every sent frame referenced in its retry buffer until the call commits.
    'grpc.enable_retries': 0,
    // No message is kept for a retry, so a write's callback means HTTP/2 has written it (a frame's
    // buffer may then be reused); without this a small message's callback came before it was sent.
    'grpc.per_rpc_retry_buffer_size': 0,
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
    'grpc.keepalive_time_ms': 10_000,
    'grpc.keepalive_timeout_ms': 5_000,
  });
  const method = Client.service.StreamMemoryDeltas;
  const serialize = (m: unknown): Buffer => (Buffer.isBuffer(m) ? serializeFrameRequest(m) : method.requestSerialize(m));
  const factory = (open: OpenReplication, onEvent: (e: ShadowChannelEvent) => void): ShadowChannel => {
    const call = client.makeBidiStreamRequest(method.path, serialize, method.responseDeserialize as (b: Buffer) => WireResponse);
    let closed = false;
    let drainWaiters: Array<() => void> = [];
    const closeWith = (reason: string) => {
      if (closed) return;
      closed = true;
      for (const w of drainWaiters) w();
      drainWaiters = [];
      onEvent({ kind: 'closed', reason });
    };
    call.on('data', (m: WireResponse) => {
      const e = fromWire(m, open.imageSizeBytes);
      if (e) onEvent(e);
    });
    call.on('drain', () => {
      for (const w of drainWaiters) w();
      drainWaiters = [];
    });
    call.on('error', (err: grpc.ServiceError) => closeWith(`stream error: ${err.details || err.message}`));
    call.on('end', () => closeWith('stream ended by shadow'));
    call.write({
      open: {
        vm_id: open.vmId,
        generation: open.generation,
        image_size_bytes: String(open.imageSizeBytes),
        page_size_bytes: open.pageSizeBytes,
        source_host_id: open.sourceHostId ?? '',
        discard_image: open.discardImage === true,
      },
    });
    return {
      // Serialized by serializeFrameRequest. The write callback comes once HTTP/2 wrote the frame
      // (or the write failed: the memory is then not handed back for reuse).
      send: (frame: Buffer, written?: (ok: boolean) => void) => (closed ? true : call.write(frame, written && ((err?: Error | null) => written(!err)))),
      drained: () => (closed ? Promise.resolve() : new Promise<void>((resolve) => drainWaiters.push(resolve))),
      close: () => {
        if (!closed) {
          closed = true;
          for (const w of drainWaiters) w();
          drainWaiters = [];
          call.cancel();
        }
      },
    };
  };
  return Object.assign(factory, { close: () => client.close() });
}

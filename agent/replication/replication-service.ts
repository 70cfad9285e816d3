// gRPC handlers of umbra.agent.v1.ReplicationService (shadow side): translate stream messages to
// ReplicationReceiver calls and replies back. Frames of one stream are handled strictly in order.
import type * as grpc from '@grpc/grpc-js';
import type * as http2 from 'node:http2';
import type { Logger } from 'pino';
import { errorMessage, PermissionDeniedError, UmbraError } from '../../shared/errors';
import type { Access } from '../../shared/grpc-handlers';
import { callSession } from '../../shared/grpc-call-session';
import { toServiceError } from '../../shared/grpc-status';
import { createLogger } from '../../shared/log';
import { formatIdentity, identityFromSubjectAltName } from '../../shared/peer-identity';
import { ReceiveBufferPool, usePooledReceive } from './grpc-pooled-receive';
import { digestHashesToBytes } from './image-digest';
import type { ReceiverReply, ReceiverSession, ReplicationReceiver, ShadowStatus } from './replication-receiver';

export const REPLICATION_SERVICE_NAME = 'umbra.agent.v1.ReplicationService';

const ERROR_CODES = { DISK_FULL: 'SHADOW_ERROR_CODE_DISK_FULL', IO: 'SHADOW_ERROR_CODE_IO', REFUSED: 'SHADOW_ERROR_CODE_REFUSED' } as const;

interface WireRequest {
  kind?: 'open' | 'frame';
  open?: { vm_id: string; generation: string; image_size_bytes: string; page_size_bytes: number; source_host_id: string; discard_image?: boolean };
  frame?: Buffer;
}

/** Converts a receiver reply to the wire message. */
export function replyToWire(r: ReceiverReply): Record<string, unknown> {
  switch (r.kind) {
    case 'ready':
      return {
        ready: {
          resume_from_epoch: String(r.resumeFromEpoch),
          full_resend: r.fullResend,
          reason: r.reason,
          ...(r.digest ? { digest_block_bytes: r.digest.blockBytes, digest: digestHashesToBytes(r.digest.hashes) } : {}),
        },
      };
    case 'ack':
      return { ack: { epoch: String(r.epoch) } };
    case 'reject':
      return { reject: { epoch: String(r.epoch), index: r.index, code: r.code, detail: r.detail } };
    case 'error':
      return { error: { code: ERROR_CODES[r.code], detail: r.detail } };
  }
}

export interface ReplicationServiceOptions {
  /** Extra check on each stream (e.g. the caller's mTLS identity is a known agent); false refuses it. */
  authorize?: (call: grpc.ServerDuplexStream<unknown, unknown>) => boolean;
  /**
   * Who may call, by mTLS identity (as HandlerKit rules): a caller without an umbra identity gets
   * UNAUTHENTICATED, one of another role PERMISSION_DENIED, before any message is read.
   */
  access?: Access;
  log?: Logger;
}

interface AuthCall {
  getAuthContext?: () => { sslPeerCertificate?: { subjectaltname?: string } } | undefined;
  getPeer(): string;
}

/** The identity check of `access` for one call; undefined when allowed, else the error to end it with. */
function identityRefusal(access: Access | undefined, method: string, call: AuthCall, log: Logger): UmbraError | undefined {
  if (!access) return undefined;
  const peer = identityFromSubjectAltName(call.getAuthContext?.()?.sslPeerCertificate?.subjectaltname);
  if (!peer) {
    log.warn({ method, remote: call.getPeer() }, 'rejected call without an umbra identity');
    return new UmbraError('UNAUTHENTICATED', 'caller presented no umbra identity');
  }
  const ok = typeof access === 'function' ? access(peer) : access.includes(peer.role);
  if (ok) return undefined;
  log.warn({ method, peer: formatIdentity(peer), remote: call.getPeer() }, 'permission denied');
  return new PermissionDeniedError(`${formatIdentity(peer)} may not call ${method}`);
}

/** HTTP/2 receive window per replication stream (and four times that for the connection). */
export const STREAM_RECEIVE_WINDOW_BYTES = 8 * 1024 * 1024;
const widenedSessions = new WeakSet<http2.Http2Session>();

/**
 * Raises the HTTP/2 receive windows of the connection a replication stream arrived on. grpc-js
 * servers keep HTTP/2's 64 KiB default and offer no option for it, so a 1 MiB frame needed 16
 * WINDOW_UPDATE round trips through the shadow's event loop: the stream ran at half the speed of
 * raw TCP or less on a loaded host. The session is reached through grpc-js call internals (the
 * call's http2 stream); when they are not there, nothing changes (returns false).
 */
export function widenReceiveWindow(call: unknown, bytes = STREAM_RECEIVE_WINDOW_BYTES): boolean {
  const session = callSession(call);
  if (!session || typeof session.setLocalWindowSize !== 'function') return false;
  if (widenedSessions.has(session)) return true;
  try {
    session.setLocalWindowSize(bytes * 4);
    session.settings({ initialWindowSize: bytes });
    widenedSessions.add(session);
    return true;
  } catch {
    return false;
  }
}

export function replicationServiceHandlers(receiver: ReplicationReceiver, options: ReplicationServiceOptions = {}): grpc.UntypedServiceImplementation {
  const log = options.log ?? createLogger('replication-service');
  // Frames arrive in reused memory (grpc-pooled-receive.ts), handed back once a frame is handled.
  const pool = new ReceiveBufferPool();
  let receiving = 0;
  return {
    StreamMemoryDeltas(call: grpc.ServerDuplexStream<WireRequest, Record<string, unknown>>) {
      const refused = identityRefusal(options.access, 'StreamMemoryDeltas', call as unknown as AuthCall, log);
      if (refused) {
        call.emit('error', toServiceError(refused));
        return;
      }
      widenReceiveWindow(call);
      let session: ReceiverSession | undefined;
      let chain: Promise<void> = Promise.resolve();
      let ended = false;
      const send = (r: ReceiverReply | undefined) => {
        if (r && !ended) call.write(replyToWire(r));
        if (r?.kind === 'error' && !ended) {
          ended = true;
          call.end();
        }
      };
      const refuse = (detail: string) => send({ kind: 'error', code: 'REFUSED', detail });
      if (options.authorize && !options.authorize(call as grpc.ServerDuplexStream<unknown, unknown>)) {
        refuse('caller is not allowed to replicate to this agent');
        return;
      }
      // Before the first read: the call's decoder has not started.
      let pooled = usePooledReceive(call, pool);
      if (pooled) receiving++;
      call.on('data', (msg: WireRequest) => {
        chain = chain.then(async () => {
          if (ended) return;
          try {
            if (msg.kind === 'open' && msg.open) {
              if (session) return refuse('stream already open');
              session = await receiver.open({
                vmId: msg.open.vm_id,
                generation: msg.open.generation,
                imageSizeBytes: Number(msg.open.image_size_bytes),
                pageSizeBytes: msg.open.page_size_bytes,
                sourceHostId: msg.open.source_host_id || undefined,
                discardImage: msg.open.discard_image === true,
              });
              session.onLateReply(send);
              send(session.ready);
            } else if (msg.kind === 'frame' && msg.frame) {
              if (!session) return refuse('frame before open');
              // The session holds no view of the frame once handleFrame() settled.
              send(await session.handleFrame(msg.frame));
            }
          } catch (err) {
            log.warn({ err: errorMessage(err) }, 'replication stream refused');
            refuse(errorMessage(err));
          } finally {
            pool.release(msg.frame);
          }
        });
      });
      const finish = () => {
        chain = chain.then(async () => {
          await session?.close();
          if (pooled) {
            pooled = false;
            // The last stream gone: its free buffers (~1 MiB each) are not kept while idle.
            if (--receiving === 0) pool.clear();
          }
          if (!ended) {
            ended = true;
            call.end();
          }
        });
      };
      call.on('end', finish);
      call.on('error', finish);
      call.on('cancelled', finish);
    },

    ListShadowImages(call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) {
      const refused = identityRefusal(options.access, 'ListShadowImages', call as unknown as AuthCall, log);
      if (refused) {
        callback(toServiceError(refused) as grpc.ServiceError);
        return;
      }
      callback(null, { images: receiver.status().map(shadowImageToWire) });
    },
  };
}

/** Wire form of one shadow image's state (ListShadowImages, GetReplicationStatus). */
export function shadowImageToWire(s: ShadowStatus): Record<string, unknown> {
  return {
    vm_id: s.vmId,
    generation: s.generation,
    epoch: String(s.epoch),
    image_path: s.imagePath,
    connected: s.connected,
    frames_applied: String(s.framesApplied),
    frames_rejected: String(s.framesRejected),
    bytes_applied: String(s.bytesApplied),
    last_error: s.lastError ?? '',
  };
}

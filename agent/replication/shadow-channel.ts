// The port between a source's link to one shadow and the transport (gRPC stream in production,
// in-process pairs in tests): frames go out, replies come back as typed events.
import type { OpenReplication, ReceiverReply } from './replication-receiver';

export type ShadowChannelEvent = ReceiverReply | { kind: 'closed'; reason: string };

export interface ShadowChannel {
  /**
   * Queues a frame; false means the transport's buffer is full: wait for drained() before more.
   * `written(true)` is called once the transport no longer reads the frame's memory (it may then be
   * reused); `written(false)`, or no call at all, when that is not known (the memory is not reused).
   */
  send(frame: Buffer, written?: (ok: boolean) => void): boolean;
  drained(): Promise<void>;
  close(): void;
}

/** Opens a stream to a shadow and sends `open`; events arrive through `onEvent` until 'closed'. */
export type ShadowChannelFactory = (open: OpenReplication, onEvent: (e: ShadowChannelEvent) => void) => ShadowChannel;

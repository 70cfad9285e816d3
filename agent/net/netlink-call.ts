// The one way the netlink adapters issue a request: always with a timeout, failures translated.
import type { RtNetlinkSocket } from 'netlink';
import { SerialQueue } from '../../shared/serial-queue';
import { translateNetlinkError } from './netlink-errors';

/** Upper bound for one rtnetlink request; the kernel answers in microseconds when healthy. */
export const DEFAULT_NETLINK_TIMEOUT_MS = 2000;

export interface NetlinkContext {
  socket: RtNetlinkSocket;
  timeoutMs: number;
  /**
   * One request at a time on the socket. The `netlink` package gathers a multi-part answer (a
   * dump) in one buffer per socket: the answer to another request arriving between a dump's
   * datagrams ends that buffer early, and the dump fails with "Multipart message not terminated
   * properly" (seen in CI: a link dump of a hand-over rehearsal beside another request).
   */
  queue: SerialQueue;
}

/**
 * Runs `request` with `{ timeout }` merged into its options, after the socket's requests before it;
 * a NACK or timeout becomes a NetlinkRequestError naming `operation` (the raw error is kept as
 * `cause`).
 */
export function callNetlink<T>(
  ctx: NetlinkContext,
  operation: string,
  request: (options: { timeout: number }) => Promise<T>,
): Promise<T> {
  return ctx.queue.run(async () => {
    try {
      return await request({ timeout: ctx.timeoutMs });
    } catch (err) {
      throw translateNetlinkError(err, operation);
    }
  });
}

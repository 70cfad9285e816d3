// The one way the netlink adapters issue a request: always with a timeout, failures translated.
import type { RtNetlinkSocket } from 'netlink';
import { translateNetlinkError } from './netlink-errors';

/** Upper bound for one rtnetlink request; the kernel answers in microseconds when healthy. */
export const DEFAULT_NETLINK_TIMEOUT_MS = 2000;

export interface NetlinkContext {
  socket: RtNetlinkSocket;
  timeoutMs: number;
}

/**
 * Runs `request` with `{ timeout }` merged into its options; a NACK or timeout becomes a
 * NetlinkRequestError naming `operation` (the raw error is kept as `cause`).
 */
export async function callNetlink<T>(
  ctx: NetlinkContext,
  operation: string,
  request: (options: { timeout: number }) => Promise<T>,
): Promise<T> {
  try {
    return await request({ timeout: ctx.timeoutMs });
  } catch (err) {
    throw translateNetlinkError(err, operation);
  }
}

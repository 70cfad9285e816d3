// Translation of `netlink` package failures (bare `Error('Request rejected: EEXIST')`, timeouts)
// into NetlinkRequestError with a reason, so no errno string travels further than the adapter.
import type { ErrorReason } from '../../shared/errors';
import { NetlinkRequestError } from './net-errors';

const REJECTED_RE = /Request rejected: (\w+)/;
const TIMEOUT_RE = /Timeout has been reached/;

/** Kernel answers meaning "the thing to delete is not there". */
export const ABSENT_ERRNOS: ReadonlySet<string> = new Set(['ENOENT', 'EADDRNOTAVAIL', 'ESRCH', 'ENODEV', 'ENXIO']);

const REASON_BY_ERRNO: Record<string, ErrorReason> = {
  EEXIST: 'ALREADY_EXISTS',
  ENOENT: 'NOT_FOUND',
  EADDRNOTAVAIL: 'NOT_FOUND',
  ESRCH: 'NOT_FOUND',
  ENODEV: 'NOT_FOUND',
  ENXIO: 'NOT_FOUND',
  EPERM: 'PERMISSION_DENIED',
  EACCES: 'PERMISSION_DENIED',
  EINVAL: 'INVALID_ARGUMENT',
  ERANGE: 'INVALID_ARGUMENT',
  EAFNOSUPPORT: 'INVALID_ARGUMENT',
  EOPNOTSUPP: 'UNIMPLEMENTED',
  ENETUNREACH: 'FAILED_PRECONDITION',
  ENETDOWN: 'FAILED_PRECONDITION',
  EBUSY: 'UNAVAILABLE',
  ENOBUFS: 'RESOURCE_EXHAUSTED',
  ENOMEM: 'RESOURCE_EXHAUSTED',
  ENOSPC: 'RESOURCE_EXHAUSTED',
};

/** The errno name of a kernel NACK ("EEXIST"), "ETIMEDOUT" for a request timeout, else undefined. */
export function netlinkErrno(err: unknown): string | undefined {
  if (err instanceof NetlinkRequestError) return /^E[A-Z0-9]+$/.test(err.errno) ? err.errno : undefined;
  if (!(err instanceof Error)) return undefined;
  const m = REJECTED_RE.exec(err.message);
  if (m) return m[1];
  if (TIMEOUT_RE.test(err.message)) return 'ETIMEDOUT';
  // Socket-level failures from the raw layer carry a proper `code`.
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}

/** Wraps any failure of a netlink request as a NetlinkRequestError naming `operation`. */
export function translateNetlinkError(err: unknown, operation: string): NetlinkRequestError {
  if (err instanceof NetlinkRequestError) return err;
  const errno = netlinkErrno(err);
  if (errno === 'ETIMEDOUT') return new NetlinkRequestError('DEADLINE_EXCEEDED', operation, errno, { cause: err });
  if (errno === undefined) return new NetlinkRequestError('INTERNAL', operation, 'unknown error', { cause: err });
  return new NetlinkRequestError(REASON_BY_ERRNO[errno] ?? 'INTERNAL', operation, errno, { cause: err });
}

/** True when the kernel refused because the entry already exists. */
export function isAlreadyExists(err: unknown): boolean {
  return netlinkErrno(err) === 'EEXIST';
}

/** True when the kernel refused because the entry (or its device) is absent. */
export function isAbsent(err: unknown): boolean {
  const errno = netlinkErrno(err);
  return errno !== undefined && ABSENT_ERRNOS.has(errno);
}

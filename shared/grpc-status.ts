// The one place that turns Umbra errors into gRPC statuses and back.
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { type ErrorReason, UmbraError, errorMessage } from './errors';

const REASON_TO_STATUS: Record<ErrorReason, status> = {
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  NOT_FOUND: status.NOT_FOUND,
  ALREADY_EXISTS: status.ALREADY_EXISTS,
  FAILED_PRECONDITION: status.FAILED_PRECONDITION,
  PERMISSION_DENIED: status.PERMISSION_DENIED,
  UNAUTHENTICATED: status.UNAUTHENTICATED,
  UNAVAILABLE: status.UNAVAILABLE,
  RESOURCE_EXHAUSTED: status.RESOURCE_EXHAUSTED,
  DEADLINE_EXCEEDED: status.DEADLINE_EXCEEDED,
  ABORTED: status.ABORTED,
  CANCELLED: status.CANCELLED,
  UNIMPLEMENTED: status.UNIMPLEMENTED,
  INTERNAL: status.INTERNAL,
};

const STATUS_TO_REASON = new Map<number, ErrorReason>(
  Object.entries(REASON_TO_STATUS).map(([reason, code]) => [code, reason as ErrorReason]),
);

/** Builds the status a handler sends. Unknown errors become INTERNAL without leaking internals. */
export function toServiceError(err: unknown): Partial<ServiceError> & { code: status; details: string } {
  const metadata = new Metadata();
  if (err instanceof UmbraError) {
    metadata.set('umbra-reason', err.reason);
    return { code: REASON_TO_STATUS[err.reason], details: err.message, message: err.message, metadata };
  }
  return { code: status.INTERNAL, details: 'internal error', message: 'internal error', metadata };
}

/** Maps a gRPC error seen by a client back into an UmbraError, so callers cannot tell local from remote. */
export function fromServiceError(err: unknown): UmbraError {
  if (err instanceof UmbraError) return err;
  const e = err as Partial<ServiceError>;
  if (typeof e?.code === 'number') {
    const reason = STATUS_TO_REASON.get(e.code) ?? 'INTERNAL';
    return new UmbraError(reason, e.details || errorMessage(err), { cause: err });
  }
  return new UmbraError('INTERNAL', errorMessage(err), { cause: err });
}

// Typed errors shared by both programs. Each carries a `reason` that maps 1:1 to a gRPC status
// (see grpc-status.ts), so handlers never pick status codes themselves.

export type ErrorReason =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'FAILED_PRECONDITION'
  | 'PERMISSION_DENIED'
  | 'UNAUTHENTICATED'
  | 'UNAVAILABLE'
  | 'RESOURCE_EXHAUSTED'
  | 'DEADLINE_EXCEEDED'
  | 'ABORTED'
  | 'CANCELLED'
  | 'UNIMPLEMENTED'
  | 'INTERNAL';

export class UmbraError extends Error {
  readonly reason: ErrorReason;
  constructor(reason: ErrorReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UmbraError';
    this.reason = reason;
  }
}

/** A request field is missing or malformed; `field` is the request path, e.g. `host.host_id`. */
export class InvalidArgumentError extends UmbraError {
  readonly field: string;
  constructor(field: string, problem: string, options?: { cause?: unknown }) {
    super('INVALID_ARGUMENT', `${field}: ${problem}`, options);
    this.name = 'InvalidArgumentError';
    this.field = field;
  }
}

export class NotFoundError extends UmbraError {
  constructor(kind: string, id: string, options?: { cause?: unknown }) {
    super('NOT_FOUND', `${kind} '${id}' not found`, options);
    this.name = 'NotFoundError';
  }
}

export class PermissionDeniedError extends UmbraError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PERMISSION_DENIED', message, options);
    this.name = 'PermissionDeniedError';
  }
}

export class FailedPreconditionError extends UmbraError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FAILED_PRECONDITION', message, options);
    this.name = 'FailedPreconditionError';
  }
}

export class UnavailableError extends UmbraError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('UNAVAILABLE', message, options);
    this.name = 'UnavailableError';
  }
}

/** One config mistake: `path` is the key path in the YAML file (`tls.cert`, `peers[2].address`). */
export interface ConfigProblem {
  path: string;
  reason: string;
}

/** A config file failed validation; every problem found is listed, not just the first. */
export class InvalidConfigError extends UmbraError {
  readonly problems: ConfigProblem[];
  constructor(source: string, problems: ConfigProblem[]) {
    super(
      'INVALID_ARGUMENT',
      `invalid config ${source}:\n` + problems.map((p) => `  ${p.path || '(root)'}: ${p.reason}`).join('\n'),
    );
    this.name = 'InvalidConfigError';
    this.problems = problems;
  }
}

/** Safe accessors for `unknown` caught values. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

export function isUmbraError(err: unknown): err is UmbraError {
  return err instanceof UmbraError;
}

// Typed failures of the QMP channel: a command QEMU rejected, one it did not answer in time, and
// a connection that went away. Each maps to a gRPC status through UmbraError's reason.
import { UmbraError } from '../../shared/errors';

/** QEMU answered a command with an error object, e.g. class GenericError, desc "...". */
export class QmpError extends UmbraError {
  readonly command: string;
  readonly errorClass: string;
  readonly desc: string;
  constructor(command: string, errorClass: string, desc: string) {
    super('FAILED_PRECONDITION', `QMP ${command} failed: ${errorClass}: ${desc}`);
    this.name = 'QmpError';
    this.command = command;
    this.errorClass = errorClass;
    this.desc = desc;
  }
}

/** No answer (or no greeting) within the deadline; the command may still run inside QEMU. */
export class QmpTimeoutError extends UmbraError {
  readonly command: string;
  readonly timeoutMs: number;
  constructor(command: string, timeoutMs: number) {
    super('DEADLINE_EXCEEDED', `QMP ${command} got no answer within ${timeoutMs} ms`);
    this.name = 'QmpTimeoutError';
    this.command = command;
    this.timeoutMs = timeoutMs;
  }
}

/** The socket closed or could not be opened; pending commands fail with this. */
export class QmpDisconnectedError extends UmbraError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('UNAVAILABLE', message, options);
    this.name = 'QmpDisconnectedError';
  }
}

/** A wait for a QMP event given up by its caller (its AbortSignal) before the event came. */
export class QmpWaitCancelledError extends UmbraError {
  readonly event: string;
  constructor(event: string, reason: string) {
    super('CANCELLED', `wait for QMP event ${event} called off: ${reason}`);
    this.name = 'QmpWaitCancelledError';
    this.event = event;
  }
}

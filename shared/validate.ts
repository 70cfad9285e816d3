// Request field checks for gRPC handlers: each failure is an InvalidArgumentError naming the field.
import { InvalidArgumentError } from './errors';
import { IDENTITY_NAME } from './peer-identity';

export function requireString(field: string, value: unknown, opts: { maxLength?: number; pattern?: RegExp; hint?: string } = {}): string {
  if (typeof value !== 'string' || value.length === 0) throw new InvalidArgumentError(field, 'is required');
  const max = opts.maxLength ?? 256;
  if (value.length > max) throw new InvalidArgumentError(field, `must be at most ${max} characters`);
  if (opts.pattern && !opts.pattern.test(value)) throw new InvalidArgumentError(field, opts.hint ?? `must match ${opts.pattern}`);
  return value;
}

/** A VM id as agents and the coordinator accept it (also a file name under the data dir). */
export const VM_ID = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;
export const VM_ID_HINT = "must be 1-128 letters, digits, '.', '_', ':', '@' or '-'";

export function requireVmId(field: string, value: unknown): string {
  return requireString(field, value, { maxLength: 128, pattern: VM_ID, hint: VM_ID_HINT });
}

export function requireHostId(field: string, value: unknown): string {
  return requireString(field, value, {
    maxLength: 63,
    pattern: IDENTITY_NAME,
    hint: "must be 1-63 letters, digits, '.', '_', '@' or '-'",
  });
}

/** Host and port, e.g. "10.0.0.2:7701" or "[fd00::2]:7701". */
export function requireEndpoint(field: string, value: unknown): string {
  return requireString(field, value, {
    pattern: /^(\[[0-9a-fA-F:.]+\]|[a-zA-Z0-9.-]+):([1-9]\d{0,4})$/,
    hint: 'must be host:port',
  });
}

/** proto3 uint64/int64 arrive as decimal strings (longs: String); this checks and converts them. */
export function toSafeInteger(field: string, value: unknown, opts: { min?: number; max?: number } = {}): number {
  const n = typeof value === 'string' ? Number(value) : typeof value === 'number' ? value : NaN;
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(field, 'must be an integer');
  if (opts.min !== undefined && n < opts.min) throw new InvalidArgumentError(field, `must be at least ${opts.min}`);
  if (opts.max !== undefined && n > opts.max) throw new InvalidArgumentError(field, `must be at most ${opts.max}`);
  return n;
}

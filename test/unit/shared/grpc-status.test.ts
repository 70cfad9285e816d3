import test from 'ava';
import { status } from '@grpc/grpc-js';
import { InvalidArgumentError, NotFoundError, UmbraError } from '../../../shared/errors';
import { fromServiceError, toServiceError } from '../../../shared/grpc-status';

test('typed errors map to their gRPC status and back', (t) => {
  const cases: Array<[UmbraError, status]> = [
    [new InvalidArgumentError('host.host_id', 'must not be empty'), status.INVALID_ARGUMENT],
    [new NotFoundError('host', 'h1'), status.NOT_FOUND],
    [new UmbraError('PERMISSION_DENIED', 'no'), status.PERMISSION_DENIED],
  ];
  for (const [err, code] of cases) {
    const se = toServiceError(err);
    t.is(se.code, code);
    t.is(se.details, err.message);
    const back = fromServiceError(se);
    t.is(back.reason, err.reason);
  }
});

test('an invalid argument names the field', (t) => {
  const se = toServiceError(new InvalidArgumentError('host.capacity.memory_bytes', 'must be positive'));
  t.regex(se.details, /^host\.capacity\.memory_bytes: /);
});

test('unknown errors become INTERNAL without their message', (t) => {
  const se = toServiceError(new Error('secret path /etc/x'));
  t.is(se.code, status.INTERNAL);
  t.notRegex(se.details, /secret/);
});

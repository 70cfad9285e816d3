// Kernel NACK messages and timeouts of the `netlink` package become typed errors with a reason.
import test from 'ava';
import { NetlinkRequestError } from '../../../agent/net/net-errors';
import type { ErrorReason } from '../../../shared/errors';
import { isAbsent, isAlreadyExists, netlinkErrno, translateNetlinkError } from '../../../agent/net/netlink-errors';

const cases: Array<[string, string, ErrorReason]> = [
  ['Request rejected: EEXIST', 'EEXIST', 'ALREADY_EXISTS'],
  ['Request rejected: ENOENT', 'ENOENT', 'NOT_FOUND'],
  ['Request rejected: EADDRNOTAVAIL', 'EADDRNOTAVAIL', 'NOT_FOUND'],
  ['Request rejected: ESRCH', 'ESRCH', 'NOT_FOUND'],
  ['Request rejected: ENODEV', 'ENODEV', 'NOT_FOUND'],
  ['Request rejected: EPERM', 'EPERM', 'PERMISSION_DENIED'],
  ['Request rejected: EINVAL', 'EINVAL', 'INVALID_ARGUMENT'],
  ['Request rejected: EWHATEVER', 'EWHATEVER', 'INTERNAL'],
  ['Timeout has been reached', 'ETIMEDOUT', 'DEADLINE_EXCEEDED'],
];
for (const [message, errno, reason] of cases) {
  test(`${message} -> ${reason}`, (t) => {
    const raw = new Error(message);
    const err = translateNetlinkError(raw, 'add route 10.0.0.5 dev tap0');
    t.true(err instanceof NetlinkRequestError);
    t.is(err.errno, errno);
    t.is(err.reason, reason);
    t.is(err.cause, raw);
    t.regex(err.message, /^add route 10\.0\.0\.5 dev tap0: kernel refused with /);
  });
}

test('socket errors with a code, and unknown values', (t) => {
  const sock = Object.assign(new Error('send failed'), { code: 'ENOBUFS' });
  t.is(translateNetlinkError(sock, 'x').reason, 'RESOURCE_EXHAUSTED');
  t.is(translateNetlinkError('weird', 'x').reason, 'INTERNAL');
  t.is(netlinkErrno(undefined), undefined);
});

test('classification helpers work on raw and on translated errors', (t) => {
  t.true(isAlreadyExists(new Error('Request rejected: EEXIST')));
  t.true(isAlreadyExists(translateNetlinkError(new Error('Request rejected: EEXIST'), 'x')));
  t.true(isAbsent(translateNetlinkError(new Error('Request rejected: EADDRNOTAVAIL'), 'x')));
  t.false(isAbsent(new Error('Request rejected: EPERM')));
  t.false(isAlreadyExists(new Error('Request rejected: ENOENT')));
});

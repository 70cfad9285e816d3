// The hand-over datagram codec: round trip, authentication, and every malformed form refused with
// its reason; random and mutated datagrams never throw anything but the typed error.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import {
  HANDOVER_DATAGRAM_KEY_BYTES,
  MAX_HANDOVER_DATAGRAM_BYTES,
  MalformedHandoverDatagramError,
  decodeHandoverDatagram,
  encodeHandoverDatagram,
  type HandoverDatagram,
} from '../../../shared/handover-datagram';

const key = Buffer.alloc(HANDOVER_DATAGRAM_KEY_BYTES, 7);
const take: HandoverDatagram = { kind: 'take', vmId: 'web-1', fencingToken: 42, sourceHost: 'hv-a' };

test('a datagram decodes to what was encoded, and verifies only under its key', (t) => {
  const buf = encodeHandoverDatagram(take, key);
  const d = decodeHandoverDatagram(buf);
  t.like(d, take);
  t.true(d.verify(key));
  t.false(d.verify(Buffer.alloc(HANDOVER_DATAGRAM_KEY_BYTES, 8)));
  t.false(d.verify(Buffer.alloc(16, 7)), 'a key of another size never verifies');
  for (const kind of ['taken', 'rehearse', 'rehearsed', 'accepted'] as const) {
    const other = decodeHandoverDatagram(encodeHandoverDatagram({ ...take, kind }, key));
    t.is(other.kind, kind);
    t.true(other.verify(key));
  }
});

test('names up to 255 bytes of UTF-8 and the largest safe token round-trip', (t) => {
  const d: HandoverDatagram = { kind: 'take', vmId: 'v'.repeat(255), fencingToken: Number.MAX_SAFE_INTEGER, sourceHost: 'hôte-ä' };
  const buf = encodeHandoverDatagram(d, key);
  t.true(buf.length <= MAX_HANDOVER_DATAGRAM_BYTES);
  t.like(decodeHandoverDatagram(buf), d);
});

test('encoding refuses what no datagram can carry, naming the field', (t) => {
  t.throws(() => encodeHandoverDatagram({ ...take, vmId: '' }, key), { message: /^vm_id:/ });
  t.throws(() => encodeHandoverDatagram({ ...take, vmId: 'x'.repeat(256) }, key), { message: /^vm_id:/ });
  t.throws(() => encodeHandoverDatagram({ ...take, sourceHost: '' }, key), { message: /^handoff.source_host:/ });
  t.throws(() => encodeHandoverDatagram({ ...take, fencingToken: 0 }, key), { message: /^fencing_token:/ });
  t.throws(() => encodeHandoverDatagram({ ...take, fencingToken: 1.5 }, key), { message: /^fencing_token:/ });
  t.throws(() => encodeHandoverDatagram(take, Buffer.alloc(31)), { message: /^handoff.datagram_key:/ });
});

test('a changed byte anywhere fails the MAC or the parse', (t) => {
  const buf = encodeHandoverDatagram(take, key);
  for (let i = 0; i < buf.length; i++) {
    const bad = Buffer.from(buf);
    bad[i] ^= 0x01;
    try {
      t.false(decodeHandoverDatagram(bad).verify(key), `byte ${i}`);
    } catch (err) {
      t.true(err instanceof MalformedHandoverDatagramError, `byte ${i}: ${String(err)}`);
    }
  }
});

test('malformed datagrams are refused with their reason', (t) => {
  const buf = encodeHandoverDatagram(take, key);
  const code = (b: Buffer) => {
    const err = t.throws(() => decodeHandoverDatagram(b), { instanceOf: MalformedHandoverDatagramError });
    return err?.code;
  };
  t.is(code(buf.subarray(0, 20)), 'short');
  t.is(code(Buffer.alloc(MAX_HANDOVER_DATAGRAM_BYTES + 1)), 'long');
  t.is(code(Buffer.concat([Buffer.from('XXXX'), buf.subarray(4)])), 'magic');
  const version = Buffer.from(buf);
  version[4] = 2;
  t.is(code(version), 'version');
  const kind = Buffer.from(buf);
  kind[5] = 9;
  t.is(code(kind), 'kind');
  const zeroToken = Buffer.from(buf);
  zeroToken.fill(0, 6, 14);
  t.is(code(zeroToken), 'token');
  const bigToken = Buffer.from(buf);
  bigToken.fill(0xff, 6, 14);
  t.is(code(bigToken), 'token');
  const longName = Buffer.from(buf);
  longName[14] = 200;
  t.is(code(longName), 'length');
  t.is(code(Buffer.concat([buf.subarray(0, buf.length - 32), Buffer.from([0]), buf.subarray(buf.length - 32)])), 'length', 'a stray byte before the MAC');
});

test('random and truncated datagrams never throw anything but the typed error', (t) => {
  const valid = encodeHandoverDatagram(take, key);
  let refused = 0;
  for (let i = 0; i < 20_000; i++) {
    let b = i % 2 === 0 ? randomBytes(i % (MAX_HANDOVER_DATAGRAM_BYTES + 40)) : Buffer.concat([valid.subarray(0, i % valid.length), randomBytes(i % 7)]);
    // A random tail can complete the valid datagram itself (1 in 256 for one byte): that one is valid.
    if (b.equals(valid)) b = Buffer.concat([valid, Buffer.from([0])]);
    try {
      if (!decodeHandoverDatagram(b).verify(key)) refused++;
    } catch (err) {
      if (!(err instanceof MalformedHandoverDatagramError)) throw err;
      refused++;
    }
  }
  t.is(refused, 20_000, 'none verified');
});

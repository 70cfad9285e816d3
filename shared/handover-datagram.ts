// The hand-over datagram: the source agent's "the address is gone, take it now" to the destination
// agent in one UDP datagram, authenticated with the switchover's one-time key (HMAC-SHA256). The
// coordinator hands the key to both agents over mTLS when it prepares the switchover; the datagram
// only names what was prepared (VM, fencing token, source), so a forged or replayed one cannot
// activate anything the coordinator did not ask for. It saves the HTTP/2 + TLS + gRPC path of the
// HandOverIp call (measured: 1.9 ms median one way between two agents on the lab machine, against
// 0.4 ms for a datagram), all of it inside the client's interruption.
//
// The destination answers a datagram it accepted with an "accepted" datagram of the same fields at
// once, and with "taken" once its activation's first announcement is out (in a VM switchover that
// waits for the guest's device state to be loaded there): the source then confirms with HandOverIp
// (which returns that activation's result) without the call competing with it for CPU.
// "rehearse" / "rehearsed" run the same path at prepare time up to a read of the kernel state,
// changing nothing, so the switch itself finds it warm.
//
// Layout: "UMHO" | version (1) | kind (1 take, 2 taken, 3 rehearse, 4 rehearsed, 5 accepted) |
// fencing token (u64 BE) | vm id length (u8) | vm id (UTF-8) | source host length (u8) |
// source host (UTF-8) | HMAC-SHA256 over everything before it (32).
import { createHmac, timingSafeEqual } from 'node:crypto';
import { InvalidArgumentError, UmbraError } from './errors';

export const HANDOVER_DATAGRAM_KEY_BYTES = 32;
const MAGIC = Buffer.from('UMHO', 'ascii');
const VERSION = 1;
const MAC_BYTES = 32;
const MAX_NAME_BYTES = 255;
const KINDS = ['take', 'taken', 'rehearse', 'rehearsed', 'accepted'] as const;
export type HandoverDatagramKind = (typeof KINDS)[number];
/** Header, kind, token, two length bytes, and the MAC: a datagram with empty names. */
const MIN_BYTES = MAGIC.length + 1 + 1 + 8 + 1 + 1 + MAC_BYTES;
export const MAX_HANDOVER_DATAGRAM_BYTES = MIN_BYTES + 2 * MAX_NAME_BYTES;

export interface HandoverDatagram {
  kind: HandoverDatagramKind;
  vmId: string;
  fencingToken: number;
  sourceHost: string;
}

/** A datagram that is not a hand-over datagram of this version; `code` says why, for the counters. */
export class MalformedHandoverDatagramError extends UmbraError {
  constructor(
    readonly code: 'short' | 'long' | 'magic' | 'version' | 'kind' | 'length' | 'token',
    detail: string,
  ) {
    super('INVALID_ARGUMENT', `malformed hand-over datagram: ${detail}`);
    this.name = 'MalformedHandoverDatagramError';
  }
}

function name(field: string, v: string): Buffer {
  const b = Buffer.from(v, 'utf8');
  if (b.length === 0 || b.length > MAX_NAME_BYTES) throw new InvalidArgumentError(field, `must be 1-${MAX_NAME_BYTES} bytes of UTF-8 in a hand-over datagram`);
  return b;
}

function requireKey(key: Buffer): void {
  if (key.length !== HANDOVER_DATAGRAM_KEY_BYTES) throw new InvalidArgumentError('handoff.datagram_key', `must be ${HANDOVER_DATAGRAM_KEY_BYTES} bytes`);
}

export function encodeHandoverDatagram(d: HandoverDatagram, key: Buffer): Buffer {
  requireKey(key);
  if (!KINDS.includes(d.kind)) throw new InvalidArgumentError('kind', `must be one of ${KINDS.join(', ')}`);
  if (!Number.isSafeInteger(d.fencingToken) || d.fencingToken < 1) throw new InvalidArgumentError('fencing_token', 'must be a positive integer in a hand-over datagram');
  const vm = name('vm_id', d.vmId);
  const source = name('handoff.source_host', d.sourceHost);
  const body = Buffer.alloc(MIN_BYTES - MAC_BYTES + vm.length + source.length);
  let o = MAGIC.copy(body, 0);
  o = body.writeUInt8(VERSION, o);
  o = body.writeUInt8(KINDS.indexOf(d.kind) + 1, o);
  o = body.writeBigUInt64BE(BigInt(d.fencingToken), o);
  o = body.writeUInt8(vm.length, o);
  o += vm.copy(body, o);
  o = body.writeUInt8(source.length, o);
  source.copy(body, o);
  return Buffer.concat([body, createHmac('sha256', key).update(body).digest()]);
}

/** A datagram read but not yet authenticated: `verify` checks its MAC against a key. */
export interface DecodedHandoverDatagram extends HandoverDatagram {
  verify(key: Buffer): boolean;
}

/** Parses `buf`; throws MalformedHandoverDatagramError for anything that is not a whole datagram. */
export function decodeHandoverDatagram(buf: Buffer): DecodedHandoverDatagram {
  if (buf.length < MIN_BYTES) throw new MalformedHandoverDatagramError('short', `${buf.length} bytes, at least ${MIN_BYTES} expected`);
  if (buf.length > MAX_HANDOVER_DATAGRAM_BYTES) throw new MalformedHandoverDatagramError('long', `${buf.length} bytes, at most ${MAX_HANDOVER_DATAGRAM_BYTES} expected`);
  if (!buf.subarray(0, MAGIC.length).equals(MAGIC)) throw new MalformedHandoverDatagramError('magic', 'wrong magic');
  let o = MAGIC.length;
  const version = buf.readUInt8(o++);
  if (version !== VERSION) throw new MalformedHandoverDatagramError('version', `version ${version}, ${VERSION} expected`);
  const kindByte = buf.readUInt8(o++);
  const kind = KINDS[kindByte - 1];
  if (kind === undefined) throw new MalformedHandoverDatagramError('kind', `kind ${kindByte}`);
  const token = buf.readBigUInt64BE(o);
  o += 8;
  if (token < 1n || token > BigInt(Number.MAX_SAFE_INTEGER)) throw new MalformedHandoverDatagramError('token', `fencing token ${token} is out of range`);
  const end = buf.length - MAC_BYTES;
  const readName = (field: string): string => {
    if (o >= end) throw new MalformedHandoverDatagramError('length', `no ${field}`);
    const n = buf.readUInt8(o++);
    if (n === 0 || o + n > end) throw new MalformedHandoverDatagramError('length', `${field} length ${n} does not fit`);
    const s = buf.toString('utf8', o, o + n);
    o += n;
    return s;
  };
  const vmId = readName('vm id');
  const sourceHost = readName('source host');
  if (o !== end) throw new MalformedHandoverDatagramError('length', `${buf.length - o - MAC_BYTES} stray bytes before the MAC`);
  const body = buf.subarray(0, o);
  const mac = buf.subarray(o);
  return {
    kind,
    vmId,
    fencingToken: Number(token),
    sourceHost,
    verify(key: Buffer): boolean {
      if (key.length !== HANDOVER_DATAGRAM_KEY_BYTES) return false;
      return timingSafeEqual(createHmac('sha256', key).update(body).digest(), mac);
    },
  };
}

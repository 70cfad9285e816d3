// Frame codec: round trip per codec, zero-page elision, corruption and size checks, gap detection.
import { randomBytes } from 'node:crypto';
import test from 'ava';
import { unpack } from 'msgpackr';
import { FrameCodec, FRAME_CODECS, FRAME_HEADER_BYTES, type Frame } from '../../../shared/frame-codec';
import { CompressionBackoff } from '../../../shared/compression-backoff';
import { buildRoundFrames } from '../../../shared/frame-builder';
import { FrameError, type FrameErrorCode } from '../../../shared/frame-errors';
import { FrameSequence } from '../../../shared/frame-sequence';
import { native } from '../../../agent/memory/native-binding';

const PS = 4096;

function round(pages: number[], fill: (page: number) => number) {
  const contents = Buffer.alloc(pages.length * PS);
  pages.forEach((p, k) => {
    const v = fill(p);
    if (v !== 0) for (let o = 0; o < PS; o += 8) contents.writeUInt32LE((v * 2654435761 + o) >>> 0, k * PS + o);
  });
  return { vmId: 'vm-a', generation: 'g1', epoch: 3, pageSizeBytes: PS, imagePageCount: 1000, pages: Uint32Array.from(pages), contents };
}

function codec(name: (typeof FRAME_CODECS)[number] = 'brotli-0', maxFrameBytes?: number) {
  return new FrameCodec({ checksum: native.xxh64, codec: name, maxFrameBytes });
}

test('xxh64 matches the reference vectors', (t) => {
  t.is(native.xxh64(Buffer.from('')), 0xef46db3751d8e999n);
  t.is(native.xxh64(Buffer.from('abc')), 0x44bc2cf5ad770999n);
});

for (const name of FRAME_CODECS) {
  test(`round trip with codec ${name}`, (t) => {
    const r = round([1, 2, 5, 9, 600], (p) => (p === 5 ? 0 : p));
    const [frame] = buildRoundFrames(r);
    const c = codec(name);
    const back = c.decode(c.encode(frame));
    t.deepEqual(Array.from(back.dataPages), [1, 2, 9, 600]);
    t.deepEqual(Array.from(back.zeroPages), [5]);
    t.true(back.last);
    t.is(back.epoch, 3);
    t.is(back.vmId, 'vm-a');
    t.true(back.data.equals(Buffer.concat([0, 1, 3, 4].map((k) => r.contents.subarray(k * PS, (k + 1) * PS)))));
  });
}

test('zero pages cost no payload', (t) => {
  const zeros = buildRoundFrames(round([10, 11, 12, 13], () => 0));
  t.is(zeros.length, 1);
  t.is(zeros[0].data.length, 0);
  t.is(zeros[0].zeroPages.length, 4);
  const c = codec('none');
  const encodedZero = c.encode(zeros[0]).length;
  const oneData = c.encode(buildRoundFrames(round([10, 11, 12, 13], (p) => (p === 10 ? 7 : 0)))[0]).length;
  t.true(encodedZero < 200, `4 zero pages encode to ${encodedZero} bytes`);
  t.true(oneData >= PS && oneData < PS + 200);
});

test('rounds are split into frames of at most 256 pages, last marked once', (t) => {
  const pages = Array.from({ length: 600 }, (_, i) => i);
  const frames = buildRoundFrames(round(pages, (p) => p + 1));
  t.deepEqual(frames.map((f) => f.dataPages.length), [256, 256, 88]);
  t.deepEqual(frames.map((f) => f.index), [0, 1, 2]);
  t.deepEqual(frames.map((f) => f.last), [false, false, true]);
  const empty = buildRoundFrames(round([], () => 0));
  t.is(empty.length, 1);
  t.true(empty[0].last);
});

function refused(t: import('ava').ExecutionContext, fn: () => unknown, code: FrameErrorCode) {
  const err = t.throws(fn, { instanceOf: FrameError });
  t.is(err?.code, code);
}

test('corruption anywhere in the body is refused by the checksum', (t) => {
  const c = codec();
  const buf = c.encode(buildRoundFrames(round([1, 2, 3], (p) => p))[0]);
  for (const at of [FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + 17, buf.length - 1]) {
    const bad = Buffer.from(buf);
    bad[at] ^= 0x40;
    refused(t, () => c.decode(bad), 'CHECKSUM_MISMATCH');
  }
});

test('header checks come before decoding: magic, version, truncation, size cap', (t) => {
  const c = codec('none', 64 * 1024);
  const buf = c.encode(buildRoundFrames(round([1], (p) => p))[0]);
  const badMagic = Buffer.from(buf);
  badMagic[0] ^= 1;
  refused(t, () => c.decode(badMagic), 'BAD_MAGIC');
  const badVersion = Buffer.from(buf);
  badVersion.writeUInt16LE(9, 4);
  refused(t, () => c.decode(badVersion), 'UNSUPPORTED_VERSION');
  refused(t, () => c.decode(buf.subarray(0, 10)), 'TRUNCATED');
  refused(t, () => c.decode(buf.subarray(0, buf.length - 3)), 'TRUNCATED');
  const huge = Buffer.from(buf);
  huge.writeUInt32LE(1 << 30, 8);
  refused(t, () => c.decode(huge), 'TOO_LARGE');
  const small = codec('none', 1024);
  refused(t, () => small.decode(buf), 'TOO_LARGE');
});

test('fields are validated after the checksum: pages beyond the image are malformed', (t) => {
  const c = codec();
  const f: Frame = { ...buildRoundFrames(round([1], (p) => p))[0], imagePageCount: 1 };
  refused(t, () => c.decode(c.encode(f)), 'MALFORMED');
});

test('gap detection: frames in order, new epochs from frame 0, no repeats', (t) => {
  const s = new FrameSequence(4);
  t.deepEqual(s.expected(), { epoch: 5, index: 0 });
  s.accept({ epoch: 5, index: 0, last: false });
  refused(t, () => s.check({ epoch: 5, index: 2, last: true }), 'GAP');
  refused(t, () => s.check({ epoch: 6, index: 0, last: true }), 'GAP');
  s.accept({ epoch: 5, index: 1, last: true });
  t.is(s.lastCompletedEpoch, 5);
  refused(t, () => s.check({ epoch: 5, index: 0, last: true }), 'GAP');
  refused(t, () => s.check({ epoch: 8, index: 1, last: true }), 'GAP');
  s.accept({ epoch: 8, index: 0, last: true }); // skipped epochs are allowed: their pages came later
  t.is(s.lastCompletedEpoch, 8);
});

for (const name of FRAME_CODECS) {
  test(`encodeFrom (one buffer, zero pages squeezed out in place) decodes like encode(buildFrame) with codec ${name}`, (t) => {
    const cases: Array<[number[], (p: number) => number]> = [
      [[1, 2, 5, 9, 600], (p) => (p === 5 ? 0 : p)],
      [[0, 1, 2, 3], () => 0],
      [[7], (p) => p],
      [[], () => 1],
      [Array.from({ length: 256 }, (_, i) => i * 3), (p) => (p % 4 === 0 ? 0 : p + 1)],
    ];
    const c = codec(name);
    for (const [pages, fill] of cases) {
      const r = round(pages, fill);
      const [frame] = buildRoundFrames(r);
      const header = { vmId: r.vmId, generation: r.generation, epoch: 2 ** 33, index: 4, last: false, pageSizeBytes: PS, imagePageCount: r.imagePageCount };
      const buf = c.encodeFrom(header, r.pages, (into) => r.contents.copy(into), { scratch: Buffer.alloc(256 * PS) });
      const back = c.decode(buf);
      t.deepEqual(Array.from(back.dataPages), Array.from(frame.dataPages));
      t.deepEqual(Array.from(back.zeroPages), Array.from(frame.zeroPages));
      t.true(back.data.equals(frame.data));
      t.is(back.epoch, 2 ** 33);
      t.is(back.index, 4);
      t.false(back.last);
      t.is(back.vmId, 'vm-a');
      const bad = Buffer.from(buf);
      bad[bad.length - 3] ^= 1;
      t.throws(() => c.decode(bad), { instanceOf: FrameError });
    }
  });
}

/** The codec a frame was sent with (the body's `c`), as the receiver reads it. */
function wireCodec(buf: Buffer): string {
  return (unpack(buf.subarray(FRAME_HEADER_BYTES)) as { c: string }).c;
}

function randomPages(n: number): { pages: Uint32Array; contents: Buffer } {
  return { pages: Uint32Array.from({ length: n }, (_, i) => 10 + i), contents: randomBytes(n * PS) };
}

for (const name of ['brotli-0', 'deflate-1'] as const) {
  test(`${name}: pages that do not compress go raw in the same frame format, and the back-off skips the next attempts`, (t) => {
    const c = codec(name);
    const header = { vmId: 'vm-a', generation: 'g1', epoch: 1, index: 0, last: false, pageSizeBytes: PS, imagePageCount: 1000 };
    const backoff = new CompressionBackoff();
    const noisy = randomPages(16);
    const first = c.encodeFrom(header, noisy.pages, (into) => noisy.contents.copy(into), { backoff });
    t.is(wireCodec(first), 'none');
    t.true(c.decode(first).data.equals(noisy.contents));
    t.is(backoff.skipping, 1);
    // Compressible pages right after a miss are not even tried (raw), the next ones are.
    const r = round([1, 2, 3, 4], (p) => p);
    const skipped = c.encodeFrom(header, r.pages, (into) => r.contents.copy(into), { backoff });
    t.is(wireCodec(skipped), 'none');
    t.true(c.decode(skipped).data.equals(r.contents));
    const tried = c.encodeFrom(header, r.pages, (into) => r.contents.copy(into), { backoff });
    t.is(wireCodec(tried), name);
    t.true(tried.length < r.contents.length / 2);
    t.true(c.decode(tried).data.equals(r.contents));
  });
}

test('a frame of zero pages only is never compressed (nothing to compress) and leaves the back-off alone', (t) => {
  const c = codec('brotli-0');
  const backoff = new CompressionBackoff();
  const r = round([3, 4], () => 0);
  const buf = c.encodeFrom({ vmId: 'vm-a', generation: 'g1', epoch: 1, index: 0, last: true, pageSizeBytes: PS, imagePageCount: 1000 }, r.pages, (into) => r.contents.copy(into), { backoff });
  t.is(wireCodec(buf), 'none');
  t.deepEqual(Array.from(c.decode(buf).zeroPages), [3, 4]);
  t.is(backoff.skipping, 0);
});

test('a frame request is serialized with its protobuf prefix in the frame headroom (no copy) and parses as the proto message', async (t) => {
  const { serializeFrameRequest } = await import('../../../agent/replication/grpc-shadow-channel');
  const { serviceDefinition } = await import('../../../shared/proto');
  const method = serviceDefinition('umbra.agent.v1.ReplicationService').StreamMemoryDeltas;
  const c = codec('none');
  const r = round([1, 2, 3], (p) => p);
  const frame = c.encodeFrom({ vmId: 'vm-a', generation: 'g1', epoch: 1, index: 0, last: true, pageSizeBytes: PS, imagePageCount: 1000 }, r.pages, (into) => r.contents.copy(into));
  const wire = serializeFrameRequest(frame);
  t.is(wire.buffer, frame.buffer, 'same memory: the frame was not copied');
  const parsed = method.requestDeserialize(wire) as { kind: string; frame: Buffer };
  t.is(parsed.kind, 'frame');
  t.true(Buffer.compare(parsed.frame, frame) === 0);
  // A buffer without headroom (e.g. from encode()) still serializes correctly, by copying.
  const plain = c.encode(buildRoundFrames(r)[0]);
  const parsed2 = method.requestDeserialize(serializeFrameRequest(plain)) as { frame: Buffer };
  t.true(Buffer.compare(parsed2.frame, plain) === 0);
});

test('the ack-on-apply flag travels in the header (both encoders); absent when not set', (t) => {
  const r = round([1, 2], (p) => p);
  const [frame] = buildRoundFrames(r);
  const c = codec();
  t.true(c.decode(c.encode({ ...frame, ackOnApply: true })).ackOnApply);
  t.false('ackOnApply' in c.decode(c.encode(frame)));
  const fill = (into: Buffer) => r.contents.copy(into);
  const header = { vmId: r.vmId, generation: r.generation, epoch: 3, index: 0, last: true, pageSizeBytes: PS, imagePageCount: 1000 };
  t.true(c.decode(c.encodeFrom({ ...header, ackOnApply: true }, r.pages, fill)).ackOnApply);
  t.is(c.decode(c.encodeFrom(header, r.pages, fill)).ackOnApply, undefined);
});

// The probe report (losses, silences, the one still open at the stop) and the guest prober's
// reading of the native prober's output onto the monotonic clock (the lab's client and the
// vm-switchover bench's).
import test from 'ava';
import { probeReport, ranges } from '../../helpers/probe-report';
import { readGuestProberLines } from '../../helpers/guest-prober';

test('ranges folds consecutive sequence numbers', (t) => {
  t.deepEqual(ranges([3, 4, 5, 9, 11, 12]), ['3-5', '9', '11-12']);
  t.deepEqual(ranges([]), []);
});

test('the longest silence, the notable ones and the lost probes', (t) => {
  const answers = [0, 1, 2, 30, 31, 32].map((ms, i) => ({ atMs: 100 + ms, seq: [0, 1, 2, 29, 30, 31][i] }));
  const r = probeReport(answers, 33, 1, 133);
  t.is(r.sent, 33);
  t.is(r.answered, 6);
  t.is(r.received, 6);
  t.is(r.lost, 27);
  t.deepEqual(r.lostRanges, ['3-28', '32']);
  t.is(r.maxGapMs, 28);
  t.is(r.maxGapStartMs, 102);
  t.is(r.maxGapEndMs, 130);
  t.deepEqual(r.gaps, [[102, 130]]);
  t.is(r.openGapMs, 1);
});

test('a duplicate echo counts as received, not as answered twice', (t) => {
  const r = probeReport([{ atMs: 0, seq: 0 }, { atMs: 0.5, seq: 0 }, { atMs: 1, seq: 1 }], 2, 1, 1.5);
  t.is(r.answered, 2);
  t.is(r.received, 3);
  t.is(r.lost, 0);
});

test('a guest that never came back leaves the open silence as the longest', (t) => {
  const r = probeReport([{ atMs: 10, seq: 0 }, { atMs: 11, seq: 1 }], 50, 1, 60);
  t.is(r.openGapMs, 49);
  t.is(r.maxGapMs, 49);
  t.is(r.maxGapStartMs, 11);
  t.is(r.maxGapEndMs, 60);
});

const MS = 1_000_000n;
const REAL0 = 1_796_000_000_000n * MS;
const MONO0 = 9_000_000n * MS;

test('answers move from the realtime clock to the monotonic one by the stopped line', (t) => {
  const real = (ms: number) => String(REAL0 + BigInt(Math.round(ms * 1000)) * 1000n);
  const lines = ['started 1', `stopped ${real(50)} ${MONO0 + 50n * MS}`, `answer ${real(0.25)} 0 `, `answer ${real(40.5)} 1 `, 'end 3'];
  const r = readGuestProberLines(lines, 1)!;
  t.is(r.sent, 3);
  t.is(r.answered, 2);
  t.deepEqual(r.lostRanges, ['2']);
  t.true(Math.abs(r.maxGapStartMs - 9_000_000.25) < 1e-6, String(r.maxGapStartMs));
  t.true(Math.abs(r.maxGapMs - 40.25) < 1e-6, String(r.maxGapMs));
  t.true(Math.abs(r.openGapMs - 9.5) < 1e-6, String(r.openGapMs));
});

test('no report before the end line; an end without the stopped line is an error', (t) => {
  t.is(readGuestProberLines(['started 1', 'stopped 5 6'], 1), undefined);
  t.throws(() => readGuestProberLines(['end 0'], 1), { message: /stopped/ });
});

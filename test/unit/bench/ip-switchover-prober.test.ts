// The ip-switchover bench's reading of udp-prober.c output: gap across the change of answering
// host, probes left unanswered across it, counts per host.
import test from 'ava';
import { readProberReport } from '../../../bench/ip-switchover/udp-prober-client';

async function* from(lines: string[]): AsyncGenerator<string> {
  yield* lines;
}

const MS = 1_000_000n;
const T0 = 1_796_000_000_000n * MS;
const answer = (ms: number, seq: number, tag: string) => `answer ${T0 + BigInt(Math.round(ms * 1000)) * 1000n} ${seq} ${tag}`;

test('the switchover gap spans the change of host; probes sent in it without answer are counted', async (t) => {
  const r = await readProberReport(
    from([answer(0, 0, 'A'), answer(1, 1, 'A'), answer(2.5, 2, 'A'), answer(9.75, 9, 'B'), answer(10.5, 10, 'B'), 'end 12']),
    'x',
  );
  t.is(r.sent, 12);
  t.is(r.answers, 5);
  t.deepEqual(r.byTag, { A: 3, B: 2 });
  t.is(r.lastTag, 'B');
  t.true(Math.abs(r.switchoverGapMs! - 7.25) < 1e-3, String(r.switchoverGapMs));
  t.is(r.unansweredProbes, 6);
  t.is(r.beforeGapTag, 'A');
  t.is(r.afterGapTag, 'B');
});

test('a longer silence without a change of host is the longest gap, not the switchover gap', async (t) => {
  const r = await readProberReport(from([answer(0, 0, 'A'), answer(20, 20, 'A'), answer(23, 23, 'B'), 'end 24']), 'x');
  t.true(Math.abs(r.maxGapMs - 20) < 1e-3);
  t.true(Math.abs(r.switchoverGapMs! - 3) < 1e-3);
  t.is(r.unansweredProbes, 2);
});

test('no change of host: no switchover figures', async (t) => {
  const r = await readProberReport(from([answer(0, 0, 'A'), answer(1, 1, 'A'), 'end 2']), 'x');
  t.is(r.switchoverGapMs, undefined);
  t.is(r.unansweredProbes, undefined);
});

test('output cut before its end line is an error naming the run', async (t) => {
  await t.throwsAsync(readProberReport(from([answer(0, 0, 'A')]), 'umbra'), { message: /umbra: the prober ended/ });
});

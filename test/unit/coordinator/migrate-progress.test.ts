// What `umbractl migrate` prints: the destination and why, one line per step start/end, then the
// step timings table and the outcome line.
import test from 'ava';
import { formatDestination, formatOutcome, formatStepUpdate, type WireSwitchover } from '../../../coordinator/cli/migrate-progress';

test('destination: chosen by rank shows the score and reasons; a named one just the hosts', (t) => {
  t.is(
    formatDestination('g1', { host_id: 'hv-b', source_host: 'hv-a', chosen_by_rank: true, score: 0.8234, reasons: ['most CPU headroom', 'warm shadow'] }),
    'switching g1 hv-a -> hv-b (best by rank, score 0.82: most CPU headroom; warm shadow)',
  );
  t.is(formatDestination('g1', { host_id: 'hv-b', source_host: 'hv-a', chosen_by_rank: false, score: 0, reasons: [] }), 'switching g1 hv-a -> hv-b');
  t.is(
    formatDestination('g1', { host_id: 'hv-c', source_host: 'hv-a', chosen_by_rank: true, score: 0.5, reasons: ['hv-b set aside: lag 80 MiB'] }),
    'switching g1 hv-a -> hv-c (best by rank, score 0.50: hv-b set aside: lag 80 MiB)',
  );
});

test('step updates: started, ended ok with its duration, failed with the error', (t) => {
  const base = { step: 'pause-source', host_id: 'hv-a', ok: false, duration_ms: 0, error: '' };
  t.regex(formatStepUpdate({ ...base, state: 'SWITCHOVER_STEP_STATE_STARTED' }), /^ {2}pause-source +hv-a +\.\.\.$/);
  const done = formatStepUpdate({ ...base, state: 'SWITCHOVER_STEP_STATE_ENDED', ok: true, duration_ms: 1.234 });
  t.regex(done, /^ {2}pause-source +hv-a +1\.23 ms {2}ok$/);
  const failed = formatStepUpdate({ ...base, step: 'flush-memory', state: 'SWITCHOVER_STEP_STATE_ENDED', ok: false, duration_ms: 10_000, error: 'flush timed out' });
  t.regex(failed, /flush-memory +hv-a +10000\.00 ms {2}FAILED: flush timed out$/);
});

test('outcome: a line per step, their sum, then status, hosts, token and total', (t) => {
  const s: WireSwitchover = {
    id: 'x',
    vm_id: 'g1',
    source_host: 'hv-a',
    destination_host: 'hv-b',
    status: 'ROLLED_BACK',
    fencing_token: '42',
    total_ms: 12.5,
    error: 'resume failed',
    steps: [
      { step: 'pause-source', host_id: 'hv-a', duration_ms: 2, ok: true, error: '' },
      { step: 'resume-destination', host_id: 'hv-b', duration_ms: 3.5, ok: false, error: 'resume failed' },
      { step: 'rollback-resume-source', host_id: 'hv-a', duration_ms: 4, ok: true, error: '' },
    ],
  };
  const lines = formatOutcome(s);
  t.is(lines.length, 6);
  t.is(lines[0], 'step timings:');
  t.regex(lines[1], /pause-source +hv-a +2\.00 ms {2}ok/);
  t.regex(lines[2], /resume-destination +hv-b +3\.50 ms {2}FAILED: resume failed/);
  t.regex(lines[4], /\(sum of steps\) +9\.50 ms/);
  t.is(lines[5], 'ROLLED_BACK: g1 hv-a -> hv-b, fencing token 42, 12.50 ms (resume failed)');
});

test("outcome: a VM switchover with the agents' instants shows the guest's pause under the steps", (t) => {
  const s: WireSwitchover = {
    id: 'x',
    vm_id: 'g1',
    source_host: 'hv-a',
    destination_host: 'hv-b',
    status: 'SUCCEEDED',
    fencing_token: '7',
    steps: [{ step: 'pause-source', host_id: 'hv-a', duration_ms: 30, ok: true, error: '' }],
    total_ms: 80,
    error: '',
    guest_paused_ms: 61.25,
  };
  const lines = formatOutcome(s);
  t.regex(lines[3], /guest paused +61\.25 ms {2}\(source pause to destination running, agents' clocks\)/);
  t.regex(lines[4], /^SUCCEEDED: g1/);
  t.false(formatOutcome({ ...s, guest_paused_ms: 0 }).some((l) => l.includes('guest paused')), 'absent when unknown');
});

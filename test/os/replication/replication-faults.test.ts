// Fault paths of memory replication on the real kernel: a cut stream resumes without a full
// resend, a corrupted frame is refused and resent, a restarted shadow resumes from its persisted
// epoch, and a full shadow disk is reported on that shadow without stopping the others.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import test, { type ExecutionContext } from 'ava';
import { isRoot, waitFor } from '../../helpers/netns';
import { nativeAvailable } from '../../../agent/memory/native-binding';
import { FlushIncompleteError } from '../../../agent/replication/errors';
import type { ShadowChannel, ShadowChannelEvent, ShadowChannelFactory } from '../../../agent/replication/shadow-channel';
import { ShadowStateStore } from '../../../agent/replication/shadow-state-store';
import { firstDifferentPage, ReplicationHarness } from './replication-harness';

const PAGES = 2048;
const PS = 4096;
const FULL_BYTES = PAGES * PS;
const harnesses: ReplicationHarness[] = [];
const mounts: string[] = [];

test.after.always(async () => {
  for (const h of harnesses) await h.close();
  for (const m of mounts) {
    try {
      execFileSync('umount', [m]);
    } catch {
      // already unmounted
    }
    rmSync(m, { recursive: true, force: true });
  }
});

const skip = !isRoot() ? 'needs root (pidfd_getfd, /proc/PID/map_files, tmpfs mount)' : !nativeAvailable() ? 'native addon not built' : undefined;
const rootTest = (title: string, fn: (t: ExecutionContext) => Promise<void>) =>
  skip ? test.skip(`${title} (skipped: ${skip})`, () => undefined) : test(title, fn);

/** A channel wrapper that lets a test act on the n-th frame of the first `streams` streams. */
function tamper(onFrame: (n: number, frame: Buffer, ch: ShadowChannel, emit: (e: ShadowChannelEvent) => void) => Buffer | 'cut'): {
  wrap: (f: ShadowChannelFactory) => ShadowChannelFactory;
  armed: { on: boolean };
} {
  const armed = { on: false };
  const wrap = (inner: ShadowChannelFactory): ShadowChannelFactory => (open, onEvent) => {
    let cut = false;
    const emit = (e: ShadowChannelEvent) => {
      if (!cut) onEvent(e);
    };
    const ch = inner(open, emit);
    let n = 0;
    return {
      send(frame) {
        if (!armed.on || cut) return ch.send(frame);
        const out = onFrame(n++, frame, ch, emit);
        if (out === 'cut') {
          armed.on = false;
          cut = true;
          ch.close();
          onEvent({ kind: 'closed', reason: 'cut by test' });
          return true;
        }
        return ch.send(out);
      },
      drained: () => ch.drained(),
      close: () => ch.close(),
    };
  };
  return { wrap, armed };
}

async function start(shadows: Parameters<ReplicationHarness['start']>[0]['shadows'], pageCount = PAGES): Promise<ReplicationHarness> {
  const h = new ReplicationHarness();
  harnesses.push(h);
  await h.start({ pageCount, tracker: 'uffd-wp', shadows });
  return h;
}

/** A channel wrapper whose transport stops taking frames while held (send() says full, drained() waits for release). */
function holdable(): { wrap: (f: ShadowChannelFactory) => ShadowChannelFactory; hold(): void; release(): void; held: () => number } {
  let holding = false;
  let waiting: Array<() => void> = [];
  const buffered: Array<() => void> = [];
  const release = () => {
    holding = false;
    for (const send of buffered.splice(0)) send();
    for (const w of waiting.splice(0)) w();
  };
  const wrap = (inner: ShadowChannelFactory): ShadowChannelFactory => (open, onEvent) => {
    const ch = inner(open, onEvent);
    return {
      send(frame, written) {
        if (!holding) return ch.send(frame, written);
        buffered.push(() => void ch.send(frame, written));
        return false;
      },
      drained: () => (holding ? new Promise<void>((r) => waiting.push(r)) : ch.drained()),
      close: () => ch.close(),
    };
  };
  return { wrap, hold: () => (holding = true), release, held: () => buffered.length };
}

rootTest('a stream cut mid-way resumes from the acknowledged epoch, without a full resend', async (t) => {
  const cutter = tamper((n, f) => (n === 1 ? 'cut' : f)); // the stream dies after one frame of the round
  const h = await start([{ id: 'a', wrap: cutter.wrap }]);
  await h.writer.cmd(`pattern 0 ${PAGES} 1`);
  const e1 = await h.source.flush(20000);
  const sentBefore = h.source.status().shadows[0].bytesSent;
  await h.writer.cmd('pattern 100 700 2'); // 3 frames in the next round; the stream dies after the first
  cutter.armed.on = true;
  const e2 = await h.source.flush(20000);
  const s = h.source.status().shadows[0];
  t.true(e2 > e1);
  t.is(s.fullResends, 0, 'no full resend');
  t.true(s.reconnects >= 1, 'the link reconnected');
  const deltaBytes = s.bytesSent - sentBefore;
  t.true(deltaBytes < FULL_BYTES / 2, `resent ${deltaBytes} bytes after the cut, the image is ${FULL_BYTES}`);
  t.is(firstDifferentPage(h.shadows[0].image('vm-test'), h.sourceRam(), PS), -1);
});

rootTest('a corrupted frame is refused by the shadow and resent', async (t) => {
  const corrupt = tamper((n, f) => {
    if (n !== 1) return f;
    const bad = Buffer.from(f);
    bad[bad.length - 5] ^= 0x5a;
    corrupt.armed.on = false;
    return bad;
  });
  const h = await start([{ id: 'a', wrap: corrupt.wrap }]);
  await h.writer.cmd(`pattern 0 ${PAGES} 3`);
  await h.source.flush(20000);
  await h.writer.cmd('pattern 0 900 4');
  corrupt.armed.on = true;
  await h.source.flush(20000);
  const link = h.source.status().shadows[0];
  const shadow = h.shadows[0].receiver!.status()[0];
  t.is(shadow.framesRejected, 1, 'the corrupted frame was refused');
  t.true(link.framesResent >= 1, 'and resent');
  t.is(link.fullResends, 0);
  t.is(firstDifferentPage(h.shadows[0].image('vm-test'), h.sourceRam(), PS), -1);
});

rootTest('a shadow agent restarted mid-stream resumes from its persisted epoch', async (t) => {
  const h = await start([{ id: 'a' }]);
  await h.writer.cmd(`pattern 0 ${PAGES} 5`);
  const e1 = await h.source.flush(20000);
  await h.writer.cmd('pattern 0 1500 6');
  const round = h.source.runRound(); // in flight while the shadow goes down
  const host = h.shadows[0];
  await host.stop();
  await round;
  await host.start(host.port);
  const persisted = await new ShadowStateStore(host.store!).get('vm-test');
  t.true((persisted?.epoch ?? 0) >= e1, `persisted epoch ${persisted?.epoch} >= ${e1}`);
  await h.writer.cmd('poke 2000 1');
  const e2 = await h.source.flush(20000);
  t.true(e2 > e1);
  const link = h.source.status().shadows[0];
  t.is(link.fullResends, 0, 'resumed, no full resend');
  t.true(link.reconnects >= 1);
  t.is(firstDifferentPage(host.image('vm-test'), h.sourceRam(), PS), -1);
});

rootTest('a full disk on one shadow is reported there; the other shadow and the source carry on', async (t) => {
  const h0 = new ReplicationHarness();
  harnesses.push(h0);
  const small = h0.tempDir();
  mkdirSync(small, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'umbra-test-full', small]);
  mounts.push(small);
  const h = await start([{ id: 'roomy' }, { id: 'full', dataDir: small }]);
  await h.writer.cmd(`pattern 0 ${PAGES} 7`); // 8 MiB of data does not fit in 2 MiB
  // Let the roomy shadow take the full copy at its own pace (a loaded machine is slow), then flush.
  await waitFor('the roomy shadow to acknowledge the full copy', async () => {
    await h.source.runRound(); // rounds are manual here: each probe sends what is owed
    const roomy = h.source.status().shadows.find((s) => s.id === 'roomy')!;
    return roomy.ackedEpoch > 0 && roomy.lagBytes === 0 ? true : undefined;
  }, 30000, 200);
  const err = await t.throwsAsync(() => h.source.flush(3000), { instanceOf: FlushIncompleteError });
  t.deepEqual(err?.lagging, ['full']);
  const full = h.source.status().shadows.find((s) => s.id === 'full');
  t.is(full?.shadowError, 'DISK_FULL');
  t.is(firstDifferentPage(h.shadows[0].image('vm-test'), h.sourceRam(), PS), -1, 'the roomy shadow is complete');
  const r = await h.source.runRound();
  t.true(r.epoch > 0, 'the source keeps running rounds');
});

rootTest('a flush cuts the background round in flight short: its unsent pages go with the flush, and the image is complete', async (t) => {
  const pages = 4096; // 16 frames: more than the link queues ahead, so the round waits for the transport
  const gate = holdable();
  const h = await start([{ id: 'a', wrap: gate.wrap }], pages);
  await h.writer.cmd(`pattern 0 ${pages} 1`);
  const e1 = await h.source.flush(20000);
  await h.writer.cmd(`pattern 0 ${pages} 2`); // every page changes
  gate.hold();
  const background = h.source.runRound();
  await waitFor('the round to wait for the held transport', async () => gate.held() > 0 || undefined, 10000, 5);
  const flushed = h.source.flush(20000);
  gate.release();
  const round = await background;
  const e2 = await flushed;
  t.true(round.cutPages > 0, `cut ${round.cutPages} of ${round.dirtyPages} pages`);
  t.true(round.cutPages < round.dirtyPages);
  t.true(e2 > round.epoch && round.epoch > e1, 'the cut epoch completed in sequence, then the flush');
  t.is(firstDifferentPage(h.shadows[0].image('vm-test'), h.sourceRam(), PS), -1);
});

rootTest('quiesce before a pause: no new round, and it returns once the shadow acknowledged what was sent (or says it could not in time)', async (t) => {
  const pages = 4096;
  const gate = holdable();
  const h = await start([{ id: 'a', wrap: gate.wrap }], pages);
  await h.writer.cmd(`pattern 0 ${pages} 1`);
  await h.source.flush(20000);
  await h.writer.cmd(`pattern 0 ${pages} 3`);
  gate.hold();
  const background = h.source.runRound();
  await waitFor('the round to wait for the held transport', async () => gate.held() > 0 || undefined, 10000, 5);
  const late = await h.source.quiesce(50);
  t.false(late.drained, 'the transport is held: not drained within 50 ms');
  const quiet = h.source.quiesce(20000);
  gate.release();
  const q = await quiet;
  t.true(q.drained);
  const round = await background;
  t.is(h.source.status().shadows[0].ackedEpoch, round.epoch, 'everything sent was acknowledged');
  t.false(h.source.status().running, 'no round loop after quiesce');
  await h.source.flush(20000);
  t.is(firstDifferentPage(h.shadows[0].image('vm-test'), h.sourceRam(), PS), -1);
});

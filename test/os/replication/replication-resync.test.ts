// A shadow image that something else wrote into (a guest ran on it on the destination during a
// rolled-back switchover) is repaired by ResyncShadow: that shadow discards its image state and
// gets again every block its digest shows different, byte for byte equal after; the other shadow
// keeps streaming deltas only.
import { closeSync, openSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import test from 'ava';
import { nativeAvailable } from '../../../agent/memory/native-binding';
import { shadowImagePath } from '../../../agent/replication/shadow-image';
import { ShadowStateStore } from '../../../agent/replication/shadow-state-store';
import { isRoot } from '../../helpers/netns';
import { firstDifferentPage, ReplicationHarness } from './replication-harness';

const PAGES = 2048; // 8 MiB
const PS = 4096;
const VM = 'vm-test';
const harnesses: ReplicationHarness[] = [];
test.after.always(async () => {
  for (const h of harnesses) await h.close();
});

const skip = !isRoot() ? 'needs root (pidfd_getfd, /proc/PID/map_files)' : !nativeAvailable() ? 'native addon not built' : undefined;
const rootTest = skip ? (title: string, _f: unknown) => test.skip(`${title} (skipped: ${skip})`, () => undefined) : test;

/** Writes like a guest running on the shadow image would: data pages changed, holes filled. */
function scribble(file: string, pages: number[]): void {
  const fd = openSync(file, 'r+');
  try {
    for (const p of pages) writeSync(fd, randomBytes(PS), 0, PS, p * PS);
  } finally {
    closeSync(fd);
  }
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 20000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

rootTest('a scribbled shadow image is discarded and its differing blocks re-sent on request; the other shadow keeps its deltas', async (t) => {
  const h = new ReplicationHarness();
  harnesses.push(h);
  await h.start({ pageCount: PAGES, tracker: 'uffd-wp', shadows: [{ id: 'keep' }, { id: 'scribbled' }], vmId: VM });
  await h.writer.cmd('pattern 0 1200 1'); // pages 1200.. stay zero (holes in the images)
  await h.source.flush(20000);
  const [keep, bad] = h.shadows;
  t.is(firstDifferentPage(bad.image(VM), h.sourceRam(), PS), -1, 'both shadows complete');

  // The guest ran on the second shadow's image: pages the source never writes again, and holes.
  const scribbled = [3, 500, 1199, 1500, 2047];
  scribble(shadowImagePath(bad.dataDir, VM), scribbled);
  await h.writer.cmd('poke 10 2');
  await h.source.flush(20000);
  // Deltas alone never repair it: this is why the re-sync exists.
  t.is(firstDifferentPage(bad.image(VM), h.sourceRam(), PS), 3, 'a delta round leaves the scribbled pages wrong');

  const before = Object.fromEntries(h.source.status().shadows.map((s) => [s.id, s]));
  t.true(h.source.resyncShadow('scribbled', 'guest ran on it (test)'));
  t.false(h.source.resyncShadow('nobody', 'x'), 'unknown shadow');
  t.is(h.source.status().shadows.find((s) => s.id === 'scribbled')!.ackedEpoch, 0, 'nothing it acknowledged counts');

  // The shadow forgets its persisted epoch as soon as the stream reopens, before any page arrives,
  // so a shadow restarted in the middle of the copy cannot resume from its old epoch.
  await waitFor('the shadow to confirm the discard', () => !h.source.status().shadows.find((s) => s.id === 'scribbled')!.resyncPending);
  t.is((await new ShadowStateStore(bad.store!).get(VM))?.epoch, 0);
  await bad.stop();
  await bad.start(bad.port);
  t.is((await new ShadowStateStore(bad.store!).get(VM))?.epoch, 0, 'still 0 after a restart');

  await h.writer.cmd('poke 20 3');
  const final = await h.source.flush(30000);
  const after = Object.fromEntries(h.source.status().shadows.map((s) => [s.id, s]));
  const ram = h.sourceRam();
  t.is(firstDifferentPage(bad.image(VM), ram, PS), -1, 're-synced shadow equals the source byte for byte');
  t.is(firstDifferentPage(keep.image(VM), ram, PS), -1, 'the other shadow too');
  t.true(after.scribbled.ackedEpoch === final && after.keep.ackedEpoch === final);
  t.is(after.scribbled.resyncs, 1);
  t.is(after.keep.resyncs, 0);
  t.is(after.keep.fullResends, 0);
  const keepDelta = after.keep.bytesSent - before.keep.bytesSent;
  const badDelta = after.scribbled.bytesSent - before.scribbled.bytesSent;
  t.true(keepDelta < 64 * 1024, `the kept shadow got ${keepDelta} bytes (deltas only)`);
  // The scribbled blocks (and the restart's reopened stream, compared again) are all it needs.
  t.true(badDelta > keepDelta, `the scribbled shadow got ${badDelta} bytes`);
  t.true(after.scribbled.digestResends >= 1);
  t.true(badDelta < before.scribbled.bytesSent / 2, `${badDelta} bytes re-sent, against ${before.scribbled.bytesSent} for its first copy`);
});

// End to end on the real kernel: a process writing known patterns into a shared memfd mapping,
// replicated over gRPC (loopback) into shadow images, checked byte for byte after each round.
import { statSync } from 'node:fs';
import test from 'ava';
import { shadowImagePath } from '../../../agent/replication/shadow-image';
import { isRoot } from '../../helpers/netns';
import { nativeAvailable } from '../../../agent/memory/native-binding';
import { softDirtySupported } from '../../../agent/memory/soft-dirty-tracker';
import type { TrackerName } from '../../../agent/memory/dirty-tracker';
import { firstDifferentPage, ReplicationHarness } from './replication-harness';

const PAGES = 2048; // 8 MiB
const PS = 4096;
const harnesses: ReplicationHarness[] = [];

test.after.always(async () => {
  for (const h of harnesses) await h.close();
});

function skipReason(tracker: TrackerName): string | undefined {
  if (!isRoot()) return 'needs root (pidfd_getfd, /proc/PID/map_files)';
  if (!nativeAvailable()) return 'native addon not built';
  if (tracker === 'soft-dirty') {
    const s = softDirtySupported();
    if (!s.ok) return s.why;
  }
  return undefined;
}

async function harness(tracker: TrackerName, shadows = [{ id: 'shadow-a' }]): Promise<ReplicationHarness> {
  const h = new ReplicationHarness();
  harnesses.push(h);
  await h.start({ pageCount: PAGES, tracker, shadows });
  return h;
}

for (const tracker of ['uffd-wp', 'soft-dirty', 'hash'] as const) {
  const why = skipReason(tracker);
  const title = `${tracker}: each round leaves the shadow image equal to the source; written pages are caught`;
  if (why) {
    test.skip(`${title} (skipped: ${why})`, () => undefined);
    continue;
  }
  test(title, async (t) => {
    const h = await harness(tracker);
    await h.writer.cmd('pattern 0 300 1');
    await h.writer.cmd('fill 1000 10 255');
    const first = await h.source.flush(20000);
    t.true(first >= 1);
    t.is(firstDifferentPage(h.shadows[0].image('vm-test'), h.sourceRam(), PS), -1, 'full copy equals source');

    // Between rounds: exact pages written (patterns that change content) must be the round's dirty set.
    await h.writer.cmd('pattern 5 3 2');
    await h.writer.cmd('poke 700 9');
    await h.writer.cmd('poke 2047 4');
    const r = await h.source.runRound();
    t.is(r.dirtyPages, 5, 'pages 5,6,7,700,2047 and nothing else');
    const e = await h.source.flush(20000);
    t.true(e >= 2);
    t.is(firstDifferentPage(h.shadows[0].image('vm-test'), h.sourceRam(), PS), -1, 'after the delta round');

    // A quiet round finds nothing and costs almost nothing on the wire.
    const quiet = await h.source.runRound();
    t.is(quiet.dirtyPages, 0);
    t.true(quiet.wireBytes < 200, `empty epoch frame is ${quiet.wireBytes} bytes`);
    await h.source.flush(20000);
  });
}

const uffdSkip = skipReason('uffd-wp');
(uffdSkip ? test.skip : test)(`zero pages cost no payload and leave holes in the image${uffdSkip ? ` (skipped: ${uffdSkip})` : ''}`, async (t) => {
  const h = await harness('uffd-wp');
  await h.writer.cmd('pattern 0 512 3');
  await h.source.flush(20000);
  await h.writer.cmd('fill 0 512 0'); // 2 MiB of data pages become zero
  const r = await h.source.runRound();
  t.is(r.dirtyPages, 512);
  t.true(r.wireBytes < 512 * 8 + 1024, `512 zero pages cost ${r.wireBytes} bytes on the wire`);
  await h.source.flush(20000);
  t.is(firstDifferentPage(h.shadows[0].image('vm-test'), h.sourceRam(), PS), -1);
  const allocatedBytes = statSync(shadowImagePath(h.shadows[0].dataDir, 'vm-test')).blocks * 512;
  t.true(allocatedBytes < 64 * 1024, `image of an all-zero guest allocates ${allocatedBytes} bytes`);
});

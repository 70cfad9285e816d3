// A new source session (the VM switched over and back, the source agent restarted) to a shadow
// that still holds an image, or that seeds one from the paused copy the VM left on its host: the
// shadow sends its image's digest and the source sends only the blocks that differ from its RAM,
// not a full copy; the image ends byte for byte equal all the same.
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { nativeAvailable } from '../../../agent/memory/native-binding';
import { locateGuestRam, ProcGuestMemory } from '../../../agent/memory/proc-guest-memory';
import { createTracker } from '../../../agent/memory/tracker-selector';
import { grpcShadowChannelFactory } from '../../../agent/replication/grpc-shadow-channel';
import { ReplicationSource } from '../../../agent/replication/replication-source';
import { silentLogger } from '../../../shared/log';
import { isRoot } from '../../helpers/netns';
import { firstDifferentPage, ReplicationHarness, ShadowHost } from './replication-harness';
import { ShmWriterProcess } from './shm-writer-process';

const PAGES = 2048; // 8 MiB
const PS = 4096;
const VM = 'vm-test';
const harnesses: ReplicationHarness[] = [];
const sources: ReplicationSource[] = [];
const writers: ShmWriterProcess[] = [];
test.after.always(async () => {
  for (const s of sources) await s.close().catch(() => undefined);
  for (const w of writers) w.close();
  for (const h of harnesses) await h.close();
});

const skip = !isRoot() ? 'needs root (pidfd_getfd, /proc/PID/map_files)' : !nativeAvailable() ? 'native addon not built' : undefined;
const rootTest = skip ? (title: string, _f: unknown) => test.skip(`${title} (skipped: ${skip})`, () => undefined) : test;

/** A second source session over the harness's guest and shadow (a new generation), started. */
async function newSession(h: ReplicationHarness): Promise<ReplicationSource> {
  const tracker = createTracker('uffd-wp', h.memory);
  await tracker.start();
  const s = new ReplicationSource({ vmId: VM, memory: h.memory, tracker, shadows: [{ id: 'shadow-a', channelFactory: h.factories[0] }], codec: 'none', manualRounds: true, log: silentLogger() });
  sources.push(s);
  s.start();
  return s;
}

/** A first session that copies the guest (written with `pattern`) to one shadow; returned still running. */
async function firstSession(pattern: string, shadows = [{ id: 'shadow-a' }]): Promise<ReplicationHarness> {
  const h = new ReplicationHarness();
  harnesses.push(h);
  await h.start({ pageCount: PAGES, tracker: 'uffd-wp', shadows, vmId: VM });
  await h.writer.cmd(pattern);
  await h.source.flush(20000);
  return h;
}

rootTest('a shadow holding an earlier session image gets only the blocks that differ, and ends equal', async (t) => {
  const h = await firstSession('pattern 0 2048 1');
  t.is(firstDifferentPage(h.shadows[0].image(VM), h.sourceRam(), PS), -1, 'first session: full copy');
  t.is(h.source.status().shadows[0].digestResends, 0, 'no image before the first session: no digest');
  await h.source.close();

  // While no session runs, the guest writes 20 pages (they straddle two 64 KiB blocks) and zeroes 3.
  await h.writer.cmd('pattern 100 20 7');
  await h.writer.cmd('fill 1500 3 0');
  const s = await newSession(h);
  await s.flush(20000);
  t.is(firstDifferentPage(h.shadows[0].image(VM), h.sourceRam(), PS), -1, 'second session: equal again');
  const second = s.status().shadows[0];
  t.is(second.digestResends, 1);
  // Blocks 6 and 7 (pages 96-127) and block 93 (pages 1488-1503): 48 pages owed of 2048.
  t.is(second.digestSparedPages, PAGES - 48);
  // Uncompressed (codec none): what a full copy costs is every page, as the next test shows.
  t.true(second.bytesSent < 48 * PS + 64 * 1024, `the second session sent ${second.bytesSent} bytes, not ${PAGES * PS}`);

  // Pages written while the new session runs still reach the shadow.
  await h.writer.cmd('poke 2000 5');
  await s.flush(20000);
  t.is(firstDifferentPage(h.shadows[0].image(VM), h.sourceRam(), PS), -1, 'a delta after the digest resend');
});

rootTest('a shadow whose digest is turned off, or that has no image, gets every page', async (t) => {
  const h = await firstSession('pattern 0 2048 2');
  await h.source.close();
  // The same shadow agent, restarted with digests off.
  const host = h.shadows[0];
  await host.stop();
  await host.start(host.port, { digestOnFullResend: false });
  const s = await newSession(h);
  await s.flush(20000);
  t.is(firstDifferentPage(host.image(VM), h.sourceRam(), PS), -1);
  const st = s.status().shadows[0];
  t.is(st.digestResends, 0);
  t.true(st.bytesSent >= PAGES * PS, `sent ${st.bytesSent} bytes`);
});

rootTest('a shadow with no image seeds it from the paused copy the VM left on its host, then gets only what differs', async (t) => {
  // The copy the VM left here (paused since): the same RAM the new source had at its switchover.
  const left = await ShmWriterProcess.start(PAGES, false);
  writers.push(left);
  await left.cmd('pattern 0 1800 4');
  const h = new ReplicationHarness();
  harnesses.push(h);
  await h.start({ pageCount: PAGES, tracker: 'uffd-wp', shadows: [], vmId: VM });
  await h.writer.cmd('pattern 0 1800 4');
  await h.writer.cmd('pattern 300 10 8'); // what the guest wrote since on its new host: blocks 18 and 19
  await h.source.close();
  const host = new ShadowHost('shadow-a', h.tempDir());
  let asked = 0;
  await host.start(0, {
    seedFrom: async (vmId, sizeBytes) => {
      asked++;
      t.is(vmId, VM);
      return ProcGuestMemory.open(locateGuestRam(left.pid, { sizeBytes, pathContains: 'memfd:umbra-test-ram' }));
    },
  });
  h.shadows.push(host);
  h.factories.push(grpcShadowChannelFactory(`127.0.0.1:${host.port}`, grpc.credentials.createInsecure()));
  const s = await newSession(h);
  await s.flush(20000);
  t.is(asked, 1);
  t.is(firstDifferentPage(host.image(VM), h.sourceRam(), PS), -1, 'equal to the new source');
  const st = s.status().shadows[0];
  t.is(st.digestResends, 1);
  t.is(st.digestSparedPages, PAGES - 32);
});

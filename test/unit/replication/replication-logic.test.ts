// Pure replication logic: page sets, pacing, /proc/PID/maps parsing, and a shadow link driven
// through a fake channel (owed pages, acks, resume without full resend, resend after reject).
import test from 'ava';
import { silentLogger } from '../../../shared/log';
import { until } from '../../helpers/until';
import { findRamMapping, parseProcMaps } from '../../../agent/memory/proc-maps';
import { PageSet } from '../../../agent/replication/page-set';
import { RoundPacer } from '../../../agent/replication/round-pacer';
import type { ShadowChannelEvent } from '../../../agent/replication/shadow-channel';
import { ShadowLink, type ShadowLinkOptions } from '../../../agent/replication/shadow-link';
import type { ImageDigest } from '../../../agent/replication/image-digest';
import type { OpenReplication } from '../../../agent/replication/replication-receiver';

test('PageSet merges rounds and returns sorted unique pages', (t) => {
  const s = new PageSet(100);
  s.add(Uint32Array.from([5, 3, 99, 5]));
  s.add(Uint32Array.from([3, 40, 100]));
  t.is(s.size, 4);
  t.deepEqual(Array.from(s.take()), [3, 5, 40, 99]);
  t.is(s.size, 0);
  s.addAll();
  t.is(s.take().length, 100);
});

test('RoundPacer spaces rounds by what the budget needs, within bounds', (t) => {
  const p = new RoundPacer({ bandwidthBudgetBytesPerSec: 10_000_000, minIntervalMs: 50, maxIntervalMs: 2000 });
  t.is(p.next({ dirtyBytes: 0, wireBytes: 0, elapsedMs: 100 }), 50);
  t.is(p.next({ dirtyBytes: 4_000_000, wireBytes: 5_000_000, elapsedMs: 500 }), 500);
  t.is(p.next({ dirtyBytes: 1e9, wireBytes: 1e9, elapsedMs: 1000 }), 2000);
  t.true(p.dirtyRateBytesPerSec > 0);
  const unlimited = new RoundPacer({ bandwidthBudgetBytesPerSec: 0, minIntervalMs: 20 });
  t.is(unlimited.next({ dirtyBytes: 1e9, wireBytes: 1e9, elapsedMs: 1000 }), 20);
});

test('findRamMapping picks the shared writable mapping of the guest size, merging split VMAs', (t) => {
  const maps = [
    '55d0c0000000-55d0c0001000 r--p 00000000 08:01 123 /usr/bin/qemu-system-x86_64',
    '7f0000000000-7f0000100000 rw-s 00000000 00:01 4242 /memfd:pc.ram (deleted)',
    '7f0000100000-7f0000200000 rw-s 00100000 00:01 4242 /memfd:pc.ram (deleted)',
    '7f1000000000-7f1000200000 rw-p 00000000 00:00 0 ',
    'garbage line',
  ].join('\n');
  const entries = parseProcMaps(maps);
  t.is(entries.length, 4);
  const m = findRamMapping(entries, { sizeBytes: 0x200000 });
  t.is(m?.startAddress, 0x7f0000000000);
  t.is(m?.path, '/memfd:pc.ram (deleted)');
  t.is(findRamMapping(entries, { sizeBytes: 0x200000, pathContains: 'other' }), undefined);
  t.is(findRamMapping(entries, { sizeBytes: 0x100000 }), undefined);
});

function fakeLink(pageCount = 64, compareImage?: ShadowLinkOptions['compareImage']) {
  const sent: Buffer[] = [];
  let emit: (e: ShadowChannelEvent) => void = () => undefined;
  let opens = 0;
  const openRequests: OpenReplication[] = [];
  const link = new ShadowLink({
    id: 's1',
    factory: (open, onEvent) => {
      opens++;
      openRequests.push(open);
      emit = onEvent;
      return { send: (b) => (sent.push(b), true), drained: async () => undefined, close: () => undefined };
    },
    open: { vmId: 'vm', generation: 'g', imageSizeBytes: pageCount * 4096, pageSizeBytes: 4096 },
    pageCount,
    encode: (epoch, index, _last, pages) => Buffer.from(`re:${epoch}:${index}:${pages.length}`),
    notify: () => undefined,
    ...(compareImage ? { compareImage } : {}),
    log: silentLogger(),
  });
  link.connect();
  return { link, sent, emit: (e: ShadowChannelEvent) => emit(e), opens: () => opens, openRequests };
}

const tick = () => new Promise((r) => setImmediate(r));

test('ShadowLink: a new shadow is owed everything; acks clear what was sent', async (t) => {
  const { link, emit } = fakeLink();
  t.false(link.canSend());
  emit({ kind: 'ready', resumeFromEpoch: 0, fullResend: true, reason: 'new' });
  t.true(link.canSend());
  const pages = link.takeOwed();
  t.is(pages.length, 64);
  link.enqueue(1, 0, true, pages, Buffer.from('f1'));
  await tick();
  t.is(link.lagBytes(), 64 * 4096);
  emit({ kind: 'ack', epoch: 1 });
  t.is(link.ackedEpoch, 1);
  t.is(link.lagBytes(), 0);
});

test('ShadowLink: after a cut, only unacknowledged pages are owed again (no full resend)', async (t) => {
  const { link, emit, opens } = fakeLink();
  emit({ kind: 'ready', resumeFromEpoch: 0, fullResend: true, reason: 'new' });
  link.enqueue(1, 0, true, link.takeOwed(), Buffer.from('f1'));
  emit({ kind: 'ack', epoch: 1 });
  link.addDirty(Uint32Array.from([3, 4]));
  link.enqueue(2, 0, true, link.takeOwed(), Buffer.from('f2'));
  link.addDirty(Uint32Array.from([9]));
  await tick();
  emit({ kind: 'closed', reason: 'cut' });
  t.is(link.state, 'backoff');
  await until(() => opens() === 2, 'the reopen after the first backoff step');
  emit({ kind: 'ready', resumeFromEpoch: 1, fullResend: false, reason: 'resume' });
  t.deepEqual(Array.from(link.takeOwed()), [3, 4, 9]);
  t.is(link.status().fullResends, 0);
  link.close();
});

test('ShadowLink: a reject resends from the refused frame, rebuilt from memory', async (t) => {
  const { link, emit, sent } = fakeLink();
  emit({ kind: 'ready', resumeFromEpoch: 0, fullResend: true, reason: 'new' });
  const pages = link.takeOwed();
  link.enqueue(1, 0, false, pages.subarray(0, 32), Buffer.from('a'));
  link.enqueue(1, 1, true, pages.subarray(32), Buffer.from('b'));
  await tick();
  emit({ kind: 'reject', epoch: 1, index: 1, code: 'CHECKSUM_MISMATCH', detail: 'bad' });
  await tick();
  t.deepEqual(sent.map(String), ['a', 'b', 're:1:1:32']);
  t.is(link.status().framesResent, 1);
  link.close();
});

test('ShadowLink: resync discards what the shadow acknowledged, reopens asking it to drop its image, and owes every page', async (t) => {
  const { link, emit, opens, openRequests } = fakeLink();
  emit({ kind: 'ready', resumeFromEpoch: 0, fullResend: true, reason: 'new' });
  link.enqueue(1, 0, true, link.takeOwed(), Buffer.from('f1'));
  emit({ kind: 'ack', epoch: 1 });
  link.addDirty(Uint32Array.from([7]));
  t.is(link.lagBytes(), 4096);
  link.resync('guest ran on it');
  t.is(link.ackedEpoch, 0);
  t.is(link.lagBytes(), 64 * 4096);
  t.true(link.status().resyncPending);
  t.is(link.status().resyncs, 1);
  await until(() => opens() === 2, 'the reopen asking for a discarded image');
  t.true(openRequests[1].discardImage);
  t.falsy(openRequests[0].discardImage);
  // A shadow that did not forget its epoch (an older agent) is still not trusted: every page, flag kept.
  emit({ kind: 'ready', resumeFromEpoch: 1, fullResend: false, reason: 'resume' });
  t.is(link.ackedEpoch, 0);
  t.is(link.takeOwed().length, 64);
  t.true(link.status().resyncPending);
  emit({ kind: 'closed', reason: 'cut' });
  await until(() => openRequests.length === 3, 'the reopen after the cut');
  t.true(openRequests[2].discardImage, 'asked again until confirmed');
  emit({ kind: 'ready', resumeFromEpoch: 0, fullResend: true, reason: 'image discarded' });
  t.false(link.status().resyncPending);
  t.is(link.takeOwed().length, 64);
  link.enqueue(2, 0, true, Uint32Array.from([1]), Buffer.from('f2'));
  emit({ kind: 'closed', reason: 'cut' });
  await until(() => openRequests.length === 4, 'the reconnect after the last cut');
  t.falsy(openRequests.at(-1)!.discardImage, 'a later reconnect resumes normally');
  link.close();
});

test('ShadowLink: with a digest it owes only what the comparison finds plus what is written meanwhile, and sends nothing before', async (t) => {
  const theirs: ImageDigest = { blockBytes: 65536, hashes: new BigUint64Array(4) };
  let finish: (pages: Uint32Array) => void = () => undefined;
  const asked: ImageDigest[] = [];
  const { link, emit } = fakeLink(64, (d) => {
    asked.push(d);
    return new Promise((r) => (finish = r));
  });
  link.addDirty(Uint32Array.from([60])); // written before the ready: the comparison reads it
  emit({ kind: 'ready', resumeFromEpoch: 0, fullResend: true, reason: 'new generation', digest: theirs });
  t.is(asked[0], theirs);
  t.is(link.state, 'comparing');
  t.false(link.canSend(true), 'no frame (and no acknowledged epoch) before the comparison is in');
  t.is(link.lagBytes(), 64 * 4096, 'lag unknown while comparing: all of it');
  link.addDirty(Uint32Array.from([2, 40])); // written during the comparison
  finish(Uint32Array.from([16, 17, 40]));
  await tick();
  t.is(link.state, 'streaming');
  t.deepEqual(Array.from(link.takeOwed()), [2, 16, 17, 40]);
  t.is(link.status().digestResends, 1);
  t.is(link.status().digestSparedPages, 61);
  link.close();
});

test('ShadowLink: a failed comparison owes every page; one overtaken by a reconnect is dropped; a resync compares too', async (t) => {
  const digest: ImageDigest = { blockBytes: 65536, hashes: new BigUint64Array(4) };
  const failing = fakeLink(64, async () => {
    throw new Error('pread failed');
  });
  failing.emit({ kind: 'ready', resumeFromEpoch: 0, fullResend: true, reason: 'x', digest });
  await tick();
  t.is(failing.link.state, 'streaming');
  t.is(failing.link.takeOwed().length, 64);
  failing.link.close();

  const finishes: Array<(p: Uint32Array) => void> = [];
  const slow = fakeLink(64, () => new Promise((r) => finishes.push(r)));
  slow.emit({ kind: 'ready', resumeFromEpoch: 0, fullResend: true, reason: 'x', digest });
  slow.emit({ kind: 'closed', reason: 'cut' });
  await until(() => slow.opens() === 2, 'the reopen');
  slow.emit({ kind: 'ready', resumeFromEpoch: 0, fullResend: true, reason: 'x', digest });
  finishes[0](Uint32Array.from([1])); // the first stream's comparison: stale
  await tick();
  t.is(slow.link.state, 'comparing');
  finishes[1](Uint32Array.from([5]));
  await tick();
  t.deepEqual(Array.from(slow.link.takeOwed()), [5]);
  slow.link.resync('guest ran on it');
  await until(() => slow.opens() === 3, 'the reopen asking for a discard');
  slow.emit({ kind: 'ready', resumeFromEpoch: 0, fullResend: true, reason: 'discarded', digest });
  t.false(slow.link.status().resyncPending, 'the discard is confirmed');
  t.is(slow.link.state, 'comparing', 'an image declared invalid is compared as it is now');
  finishes[2](Uint32Array.from([7, 8]));
  await tick();
  t.deepEqual(Array.from(slow.link.takeOwed()), [7, 8]);
  slow.link.close();
});

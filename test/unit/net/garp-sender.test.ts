// GarpSender with a fake send handle: first frame at once, count and spacing, cancel, failures.
import test from 'ava';
import { GarpSender, buildAnnouncementFrame } from '../../../agent/net/garp-sender';
import { AnnounceError } from '../../../agent/net/net-errors';

function fakeHandles() {
  const sent: Array<{ iface: string; frame: Buffer; raw: Buffer; atMs: number }> = [];
  const opened: string[] = [];
  let closed = 0;
  let failSends = 0;
  const openHandle = (iface: string) => {
    opened.push(iface);
    if (iface === 'nosuch0') throw new Error('No such device exists');
    return {
      send: (frame: Buffer) => {
        if (failSends > 0) {
          failSends--;
          throw new Error('send: Network is down');
        }
        sent.push({ iface, frame: Buffer.from(frame), raw: frame, atMs: performance.now() });
      },
      close: () => void closed++,
    };
  };
  return { sent, opened, openHandle, closedCount: () => closed, failNextSends: (n: number) => (failSends = n) };
}

const a = { interface: 'eth0', address: '10.0.0.100', mac: '52:54:00:00:00:01', count: 3, intervalMs: 5 };

test('the first frame leaves synchronously, the rest follow at the interval, one handle per interface', async (t) => {
  const h = fakeHandles();
  const s = new GarpSender({ openHandle: h.openHandle });
  const burst = s.announce(a);
  t.is(h.sent.length, 1, 'first frame sent before announce() returned');
  await burst.firstSent;
  t.is(await burst.finished, 3);
  t.is(h.sent.length, 3);
  t.true(h.sent.every((x) => x.frame.readUInt16BE(12) === 0x0806 && x.frame.length === 60));
  // Spaced, not a burst. Not to the ms: a timer's due time is counted from the event loop's
  // cached clock, which on a loaded CI machine lags performance.now() by a few ms.
  t.true(h.sent[2].atMs - h.sent[0].atMs >= a.intervalMs, `frames 0 and 2 ${(h.sent[2].atMs - h.sent[0].atMs).toFixed(1)} ms apart`);
  await s.announce({ ...a, count: 1 }).finished;
  t.deepEqual(h.opened, ['eth0']);
  await s.close();
  t.is(h.closedCount(), 1);
});

test('IPv6 addresses are announced with a neighbor advertisement', async (t) => {
  const h = fakeHandles();
  const s = new GarpSender({ openHandle: h.openHandle });
  await s.announce({ ...a, address: 'fd00::64', count: 1 }).finished;
  t.is(h.sent[0].frame.readUInt16BE(12), 0x86dd);
  t.is(h.sent[0].frame[54], 136);
  await s.close();
});

test('cancel stops the remaining frames', async (t) => {
  const h = fakeHandles();
  const s = new GarpSender({ openHandle: h.openHandle });
  const burst = s.announce({ ...a, count: 10, intervalMs: 50 });
  burst.cancel();
  t.is(await burst.finished, 1);
  await new Promise((r) => setTimeout(r, 80));
  t.is(h.sent.length, 1);
  await s.close();
});

test('an interface that cannot be opened fails firstSent with AnnounceError; finished still resolves', async (t) => {
  const h = fakeHandles();
  const s = new GarpSender({ openHandle: h.openHandle });
  const burst = s.announce({ ...a, interface: 'nosuch0' });
  const err = await t.throwsAsync(burst.firstSent, { instanceOf: AnnounceError });
  t.is(err!.reason, 'UNAVAILABLE');
  t.regex(err!.message, /nosuch0/);
  t.is(await burst.finished, 0);
  await s.close();
});

test('a failed send ends the burst early and the handle is reopened next time', async (t) => {
  const h = fakeHandles();
  const s = new GarpSender({ openHandle: h.openHandle });
  const burst = s.announce(a);
  h.failNextSends(1);
  t.is(await burst.finished, 1);
  await s.announce({ ...a, count: 1 }).finished;
  t.deepEqual(h.opened, ['eth0', 'eth0']);
  await s.close();
});

test('malformed addresses are refused, and nothing is sent after close()', async (t) => {
  const h = fakeHandles();
  const s = new GarpSender({ openHandle: h.openHandle });
  await t.throwsAsync(s.announce({ ...a, address: '10.0.0' }).firstSent, { instanceOf: AnnounceError });
  await t.throwsAsync(s.announce({ ...a, mac: 'nope' }).firstSent, { instanceOf: AnnounceError });
  await s.close();
  await t.throwsAsync(s.announce(a).firstSent, { message: /closed/ });
  t.is(h.sent.length, 0);
});

test('prepare with an address and MAC builds the frame ahead: every burst for them sends that one frame', async (t) => {
  const h = fakeHandles();
  const s = new GarpSender({ openHandle: h.openHandle });
  s.prepare('eth0', { address: a.address, mac: a.mac });
  t.deepEqual(h.opened, ['eth0']);
  t.is(h.sent.length, 0, 'prepare sends nothing');
  await s.announce({ ...a, count: 1 }).finished;
  await s.announce({ ...a, count: 1 }).finished;
  t.is(h.sent[0].raw, h.sent[1].raw, 'the same built frame');
  t.deepEqual(h.sent[0].frame, buildAnnouncementFrame(a));
  // Another address is its own frame.
  await s.announce({ ...a, address: '10.0.0.101', count: 1 }).finished;
  t.notDeepEqual(h.sent[2].frame, h.sent[0].frame);
  t.throws(() => s.prepare('eth0', { address: 'not-an-ip', mac: a.mac }), { instanceOf: AnnounceError });
  await s.close();
});

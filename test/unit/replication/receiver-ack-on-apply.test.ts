// The shadow's acknowledgements: a flush's epoch (frames flagged ack-on-apply) once its pages are in
// the image, before it is durable; other epochs only once durable, through the session's late
// replies. Durability never holds up the frames that follow, and epochs completed meanwhile share
// the next sync.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { native } from '../../../agent/memory/native-binding';
import { ReplicationReceiver, type ReceiverReply } from '../../../agent/replication/replication-receiver';
import { shadowImagePath } from '../../../agent/replication/shadow-image';
import { buildRoundFrames } from '../../../shared/frame-builder';
import { FrameCodec } from '../../../shared/frame-codec';
import { silentLogger } from '../../../shared/log';
import { MemoryKvStore } from '../../fakes/memory-kv-store';

const PS = 4096;
const PAGES = 16;

/** A store whose writes wait until released (a slow disk). */
class GatedStore extends MemoryKvStore {
  private gate: Promise<void> = Promise.resolve();
  private open: () => void = () => undefined;
  writes = 0;
  hold(): void {
    this.gate = new Promise((r) => (this.open = r));
  }
  release(): void {
    this.open();
  }
  override async put(key: string, value: unknown): Promise<void> {
    await this.gate;
    this.writes++;
    return super.put(key, value);
  }
}

async function setup(t: { teardown(f: () => void): void }) {
  const dir = mkdtempSync(path.join(tmpdir(), 'umbra-ack-'));
  const store = new GatedStore();
  const receiver = new ReplicationReceiver({ imageDir: dir, store, syncEachEpoch: true, retainFreedMemory: false, log: silentLogger() });
  const session = await receiver.open({ vmId: 'vm1', generation: 'g1', imageSizeBytes: PAGES * PS, pageSizeBytes: PS });
  const late: ReceiverReply[] = [];
  session.onLateReply((r) => late.push(r));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const codec = new FrameCodec({ checksum: native.xxh64, codec: 'none' });
  const frame = (epoch: number, page: number, byte: number, ackOnApply: boolean) => {
    const contents = Buffer.alloc(PS, byte);
    const [f] = buildRoundFrames({ vmId: 'vm1', generation: 'g1', epoch, pageSizeBytes: PS, imagePageCount: PAGES, pages: Uint32Array.of(page), contents });
    return codec.encode({ ...f, ...(ackOnApply ? { ackOnApply: true } : {}) });
  };
  const image = () => readFileSync(shadowImagePath(dir, 'vm1'));
  return { store, receiver, session, frame, image, late };
}

/** Until `cond` holds (late replies arrive from the durability chain). */
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
}

test('a flush epoch is acknowledged once applied and made durable right after, without holding up the next frame', async (t) => {
  const { store, receiver, session, frame, image, late } = await setup(t);
  const before = store.writes;
  store.hold();
  const ack = await session.handleFrame(frame(1, 3, 0xab, true));
  t.deepEqual(ack, { kind: 'ack', epoch: 1 });
  t.is(image()[3 * PS], 0xab, 'the pages are in the image when the ack goes');
  t.is(store.writes, before, 'not yet durable');
  t.is(await session.handleFrame(frame(2, 4, 0xcd, false)), undefined, 'applied at once; its ack waits for durability');
  t.is(image()[4 * PS], 0xcd);
  t.deepEqual(late, []);
  store.release();
  await until(() => late.length > 0);
  t.deepEqual(late, [{ kind: 'ack', epoch: 2 }]);
  t.is(receiver.status()[0].epoch, 2);
  t.is(store.writes, before + 2, 'both epochs persisted, in order');
  await session.close();
});

test('an ordinary epoch is acknowledged only once durable', async (t) => {
  const { store, session, frame, late } = await setup(t);
  store.hold();
  t.is(await session.handleFrame(frame(1, 3, 0xab, false)), undefined);
  await new Promise((r) => setTimeout(r, 30));
  t.deepEqual(late, [], 'no ack while the epoch is not durable');
  store.release();
  await until(() => late.length > 0);
  t.deepEqual(late, [{ kind: 'ack', epoch: 1 }]);
  await session.close();
});

test('epochs completed while one is made durable share the next sync: one ack, the highest', async (t) => {
  const { store, receiver, session, frame, late } = await setup(t);
  const before = store.writes;
  store.hold();
  await session.handleFrame(frame(1, 3, 0x01, false));
  await session.handleFrame(frame(2, 4, 0x02, false));
  await session.handleFrame(frame(3, 5, 0x03, false));
  store.release();
  await until(() => late.some((r) => r.kind === 'ack' && r.epoch === 3));
  t.deepEqual(late, [{ kind: 'ack', epoch: 1 }, { kind: 'ack', epoch: 3 }]);
  t.is(store.writes, before + 2, 'epoch 1, then 3 (2 is covered by 3)');
  t.is(receiver.status()[0].epoch, 3);
  await session.close();
});

test('a persist that fails is reported at once (and the session stops)', async (t) => {
  const { store, session, frame, late } = await setup(t);
  store.failNextWrite = new Error('EIO (injected)');
  t.deepEqual(await session.handleFrame(frame(1, 3, 0xab, true)), { kind: 'ack', epoch: 1 });
  await until(() => late.length > 0);
  t.is(late[0]?.kind, 'error');
  t.regex((late[0] as { detail: string }).detail, /EIO/);
  t.is(await session.handleFrame(frame(2, 4, 0xcd, false)), undefined);
  await session.close();
});

// The shadow's acknowledgement of a flush (frames flagged ack-on-apply): sent once the pages are in
// the image, before the epoch is durable; the next frame waits until it is. Other epochs are
// acknowledged only once durable.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { native } from '../../../agent/memory/native-binding';
import { ReplicationReceiver } from '../../../agent/replication/replication-receiver';
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
  const receiver = new ReplicationReceiver({ dataDir: dir, store, syncEachEpoch: true, retainFreedMemory: false, log: silentLogger() });
  const session = await receiver.open({ vmId: 'vm1', generation: 'g1', imageSizeBytes: PAGES * PS, pageSizeBytes: PS });
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const codec = new FrameCodec({ checksum: native.xxh64, codec: 'none' });
  const frame = (epoch: number, page: number, byte: number, ackOnApply: boolean) => {
    const contents = Buffer.alloc(PS, byte);
    const [f] = buildRoundFrames({ vmId: 'vm1', generation: 'g1', epoch, pageSizeBytes: PS, imagePageCount: PAGES, pages: Uint32Array.of(page), contents });
    return codec.encode({ ...f, ...(ackOnApply ? { ackOnApply: true } : {}) });
  };
  const image = () => readFileSync(shadowImagePath(dir, 'vm1'));
  return { store, receiver, session, frame, image };
}

const pending = async (p: Promise<unknown>) => {
  let done = false;
  void p.then(() => (done = true), () => (done = true));
  await new Promise((r) => setTimeout(r, 30));
  return !done;
};

test('a flush epoch is acknowledged once applied, made durable right after; the next frame waits for that', async (t) => {
  const { store, receiver, session, frame, image } = await setup(t);
  const before = store.writes;
  store.hold();
  const ack = await session.handleFrame(frame(1, 3, 0xab, true));
  t.deepEqual(ack, { kind: 'ack', epoch: 1 });
  t.is(image()[3 * PS], 0xab, 'the pages are in the image when the ack goes');
  t.is(store.writes, before, 'not yet durable');
  const next = session.handleFrame(frame(2, 4, 0xcd, false));
  t.true(await pending(next), 'the next frame waits for the epoch before to be durable');
  store.release();
  t.deepEqual(await next, { kind: 'ack', epoch: 2 });
  t.is(receiver.status()[0].epoch, 2);
  t.is(store.writes, before + 2, 'both epochs persisted');
  await session.close();
});

test('an ordinary epoch is acknowledged only once durable', async (t) => {
  const { store, session, frame } = await setup(t);
  store.hold();
  const ack = session.handleFrame(frame(1, 3, 0xab, false));
  t.true(await pending(ack));
  store.release();
  t.deepEqual(await ack, { kind: 'ack', epoch: 1 });
  await session.close();
});

test('a deferred persist that fails is reported with the next frame (and the session stops)', async (t) => {
  const { store, session, frame } = await setup(t);
  store.failNextWrite = new Error('EIO (injected)');
  t.deepEqual(await session.handleFrame(frame(1, 3, 0xab, true)), { kind: 'ack', epoch: 1 });
  const r = await session.handleFrame(frame(2, 4, 0xcd, false));
  t.is(r?.kind, 'error');
  t.regex((r as { detail: string }).detail, /EIO/);
  t.is(await session.handleFrame(frame(3, 5, 0xef, false)), undefined);
  await session.close();
});

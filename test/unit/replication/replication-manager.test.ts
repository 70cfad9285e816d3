// ReplicationManager with fakes: a Buffer as guest RAM, a scripted tracker, and in-process shadow
// channels that decode frames into their own image and acknowledge epochs. Covers start, shadow
// set changes, flush to an exact copy, stop, and the errors naming fields or VMs.
import test from 'ava';
import { silentLogger } from '../../../shared/log';
import { FrameCodec } from '../../../shared/frame-codec';
import { isUmbraError } from '../../../shared/errors';
import type { DirtyTracker } from '../../../agent/memory/dirty-tracker';
import { allPages } from '../../../agent/memory/dirty-tracker';
import type { GuestMemory } from '../../../agent/memory/guest-memory';
import { native } from '../../../agent/memory/native-binding';
import { ReplicationManager } from '../../../agent/replication/replication-manager';
import type { ShadowChannelEvent, ShadowChannelFactory } from '../../../agent/replication/shadow-channel';

const PS = 4096;
const PAGES = 64;

class BufferMemory implements GuestMemory {
  readonly buf = Buffer.alloc(PAGES * PS);
  readonly region = { pid: 1, startAddress: 0, sizeBytes: PAGES * PS, pageSizeBytes: PS, fileOffsetBytes: 0, backingPath: 'fake' };
  readonly pageCount = PAGES;
  readonly fd = -1;
  closed = false;
  readPages(index: number, count: number, into: Buffer): void {
    this.buf.copy(into, 0, index * PS, (index + count) * PS);
  }
  close(): void {
    this.closed = true;
  }
  write(page: number, byte: number): void {
    this.buf.fill(byte, page * PS, (page + 1) * PS);
    dirty.add(page);
  }
}

const dirty = new Set<number>();
class ScriptedTracker implements DirtyTracker {
  readonly name = 'hash' as const;
  private first = true;
  closed = false;
  async start(): Promise<void> {}
  async scan(): Promise<Uint32Array> {
    if (this.first) {
      this.first = false;
      dirty.clear();
      return allPages(PAGES);
    }
    const out = Uint32Array.from([...dirty].sort((a, b) => a - b));
    dirty.clear();
    return out;
  }
  close(): void {
    this.closed = true;
  }
}

/** A shadow in the test process: applies frames to its image and acks each completed epoch. */
class FakeShadow {
  readonly image = Buffer.alloc(PAGES * PS);
  opens = 0;
  closes = 0;
  /** False: applies frames but acknowledges nothing (a shadow that has fallen behind). */
  acking = true;
  private readonly codec = new FrameCodec({ checksum: native.xxh64 });
  factory(): ShadowChannelFactory & { close(): void } {
    const f = (_open: unknown, onEvent: (e: ShadowChannelEvent) => void) => {
      this.opens++;
      let open = true;
      queueMicrotask(() => onEvent({ kind: 'ready', resumeFromEpoch: 0, fullResend: true, reason: 'test' }));
      return {
        send: (b: Buffer) => {
          if (!open) return true;
          const fr = this.codec.decode(b);
          for (let i = 0; i < fr.dataPages.length; i++) fr.data.copy(this.image, fr.dataPages[i] * PS, i * PS, (i + 1) * PS);
          for (const z of fr.zeroPages) this.image.fill(0, z * PS, (z + 1) * PS);
          if (fr.last && this.acking) queueMicrotask(() => open && onEvent({ kind: 'ack', epoch: fr.epoch }));
          return true;
        },
        drained: async () => undefined,
        close: () => {
          open = false;
          this.closes++;
        },
      };
    };
    return Object.assign(f, { close: () => undefined });
  }
}

function setup() {
  const memory = new BufferMemory();
  const tracker = new ScriptedTracker();
  const shadows: Record<string, FakeShadow> = { 'hv-b': new FakeShadow(), 'hv-c': new FakeShadow() };
  const manager = new ReplicationManager(
    {
      hostId: 'hv-a',
      openGuest: () => memory,
      selectTracker: async () => ({ tracker, attempts: [{ name: 'uffd-wp', ok: false, reason: 'no userfaultfd' }, { name: 'hash', ok: true, reason: 'started' }] }),
      channelFactory: (hostId) => shadows[hostId].factory(),
      log: silentLogger(),
    },
    { bandwidthBudgetBytesPerSec: 0, minRoundIntervalMs: 5, maxRoundIntervalMs: 50, windowBytes: 64 << 20, codec: 'none', trackers: ['uffd-wp', 'hash'] },
  );
  manager.registerVm('vm-1', { pid: 1, memoryBytes: PAGES * PS });
  return { memory, tracker, shadows, manager };
}

test.serial('start, writes, flush: both shadows hold the source RAM as of the final epoch; stop releases everything', async (t) => {
  const { memory, tracker, shadows, manager } = setup();
  memory.write(3, 7);
  memory.write(40, 9);
  const st = await manager.start('vm-1', [{ hostId: 'hv-b', endpoint: '10.0.0.2:7701' }, { hostId: 'hv-c', endpoint: '10.0.0.3:7701' }]);
  t.is(st.tracker, 'hash');
  t.deepEqual(st.trackerAttempts.map((a) => a.ok), [false, true]);
  t.deepEqual(st.endpoints, { 'hv-b': '10.0.0.2:7701', 'hv-c': '10.0.0.3:7701' });
  memory.write(5, 1);
  memory.write(63, 2);
  const { finalEpoch } = await manager.flush('vm-1', 5000);
  t.true(finalEpoch >= 1);
  t.true(shadows['hv-b'].image.equals(memory.buf));
  t.true(shadows['hv-c'].image.equals(memory.buf));
  const [after] = manager.status('vm-1');
  t.false(after.running);
  t.true(after.shadows.every((s) => s.ackedEpoch >= finalEpoch && s.lagBytes === 0));

  // Resumed rounds catch later writes; a second flush brings the images level again.
  await manager.resume('vm-1');
  memory.write(10, 5);
  const second = await manager.flush('vm-1', 5000);
  t.true(second.finalEpoch > finalEpoch);
  t.true(shadows['hv-b'].image.equals(memory.buf));

  t.true(await manager.stop('vm-1'));
  t.false(await manager.stop('vm-1'));
  t.true(memory.closed);
  t.true(tracker.closed);
});

test.serial('updating shadows drops the removed one and gives a new one a full copy', async (t) => {
  const { memory, shadows, manager } = setup();
  memory.write(1, 1);
  await manager.start('vm-1', [{ hostId: 'hv-b', endpoint: '10.0.0.2:7701' }]);
  await manager.flush('vm-1', 5000);
  await manager.resume('vm-1');
  const st = await manager.updateShadows('vm-1', [{ hostId: 'hv-c', endpoint: '10.0.0.3:7701' }]);
  t.deepEqual(st.shadows.map((s) => s.id), ['hv-c']);
  t.is(shadows['hv-b'].closes, 1);
  memory.write(2, 2);
  await manager.flush('vm-1', 5000);
  t.true(shadows['hv-c'].image.equals(memory.buf), 'the new shadow got every page, not just the last delta');
  // Starting again on a replicating VM reshapes it (same as UpdateShadows).
  const again = await manager.start('vm-1', [{ hostId: 'hv-c', endpoint: '10.0.0.3:7701' }, { hostId: 'hv-b', endpoint: '10.0.0.2:7701' }]);
  t.is(again.shadows.length, 2);
  t.is(shadows['hv-c'].opens, 1, 'an unchanged shadow keeps its stream');
  await manager.close();
});

test.serial('errors: unknown VM, not replicating, this host or a duplicate as shadow', async (t) => {
  const { manager } = setup();
  const reason = async (p: Promise<unknown>) => {
    const e = await t.throwsAsync(p);
    return isUmbraError(e) ? `${e.reason} ${e.message}` : String(e);
  };
  t.regex(await reason(manager.start('ghost', [{ hostId: 'hv-b', endpoint: 'x:1' }])), /^NOT_FOUND .*ghost/);
  t.regex(await reason(manager.flush('vm-1', 100)), /^NOT_FOUND replication of vm 'vm-1'/);
  t.regex(await reason(manager.start('vm-1', [{ hostId: 'hv-a', endpoint: 'x:1' }])), /^INVALID_ARGUMENT shadows\[0\]\.host_id: .*source/);
  t.regex(
    await reason(manager.start('vm-1', [{ hostId: 'hv-b', endpoint: 'x:1' }, { hostId: 'hv-b', endpoint: 'x:2' }])),
    /^INVALID_ARGUMENT shadows\[1\]\.host_id: duplicate/,
  );
  t.false(manager.isReplicating('vm-1'));
  await manager.close();
});

test.serial("a VM's current QEMU (as the vm module knows it) is opened instead of the registered locator; an unknown VM is refused", async (t) => {
  const opened: unknown[] = [];
  const memory = new BufferMemory();
  const tracker = new ScriptedTracker();
  const shadow = new FakeShadow();
  let current: { pid: number; memoryBytes: number } | undefined = { pid: 4242, memoryBytes: PAGES * PS };
  const manager = new ReplicationManager(
    {
      hostId: 'hv-a',
      openGuest: (_vmId, locator) => (opened.push(locator), memory),
      currentLocator: async (vmId) => (vmId === 'vm-1' || vmId === 'vm-new' ? current : undefined),
      selectTracker: async () => ({ tracker, attempts: [{ name: 'hash', ok: true, reason: 'started' }] }),
      channelFactory: () => shadow.factory(),
      log: silentLogger(),
    },
    { bandwidthBudgetBytesPerSec: 0, minRoundIntervalMs: 5, maxRoundIntervalMs: 50, windowBytes: 64 << 20, codec: 'none', trackers: ['hash'] },
  );
  // Its config names the QEMU it ran in before it moved away and back.
  manager.registerVm('vm-1', { qmpSocket: '/run/vm-1.qmp', memoryBytes: PAGES * PS });
  await manager.start('vm-1', [{ hostId: 'hv-b', endpoint: '10.0.0.2:7701' }]);
  t.deepEqual(opened.pop(), { pid: 4242, memoryBytes: PAGES * PS });
  await manager.stop('vm-1');
  current = undefined;
  await manager.start('vm-1', [{ hostId: 'hv-b', endpoint: '10.0.0.2:7701' }]);
  t.deepEqual(opened.pop(), { qmpSocket: '/run/vm-1.qmp', memoryBytes: PAGES * PS }, 'without a running QEMU here, the registered locator');
  await manager.stop('vm-1');
  const err = await t.throwsAsync(manager.start('vm-other', [{ hostId: 'hv-b', endpoint: '10.0.0.2:7701' }]));
  t.true(isUmbraError(err) && err.reason === 'NOT_FOUND');
  // A guest the vm module runs here needs no replication config.
  current = { pid: 77, memoryBytes: PAGES * PS };
  await manager.start('vm-new', [{ hostId: 'hv-b', endpoint: '10.0.0.2:7701' }]);
  t.deepEqual(opened.pop(), { pid: 77, memoryBytes: PAGES * PS });
  await manager.stop('vm-new');
});

test.serial("a switchover's flush waits for its destination only: a shadow that lags does not hold it; a host that is no shadow is refused", async (t) => {
  const { memory, shadows, manager } = setup();
  memory.write(3, 7);
  await manager.start('vm-1', [{ hostId: 'hv-b', endpoint: '10.0.0.2:7701' }, { hostId: 'hv-c', endpoint: '10.0.0.3:7701' }]);
  await manager.flush('vm-1', 5000);
  await manager.resume('vm-1');
  shadows['hv-c'].acking = false;
  memory.write(9, 4);
  // The source's timers do not hold the process open (a daemon has its own handles): this does.
  const alive = setInterval(() => undefined, 50);
  const lagging = await t.throwsAsync(manager.flush('vm-1', 200));
  t.regex(String(lagging?.message), /hv-c/, 'waiting for every shadow, the lagging one holds the flush');
  await manager.resume('vm-1');
  memory.write(10, 5);
  const { finalEpoch } = await manager.flush('vm-1', 5000, ['hv-b']);
  t.true(finalEpoch > 0);
  t.true(shadows['hv-b'].image.equals(memory.buf), 'the destination holds the final RAM');
  const [st] = manager.status('vm-1');
  t.true(st.shadows.find((s) => s.id === 'hv-b')!.ackedEpoch >= finalEpoch);
  t.true(st.shadows.find((s) => s.id === 'hv-c')!.ackedEpoch < finalEpoch, 'the other shadow had not acknowledged it');
  await manager.resume('vm-1');
  const notShadow = await t.throwsAsync(manager.flush('vm-1', 1000, ['hv-x']));
  t.true(isUmbraError(notShadow) && notShadow.reason === 'FAILED_PRECONDITION' && /hv-x/.test(notShadow.message));
  clearInterval(alive);
  await manager.close();
});

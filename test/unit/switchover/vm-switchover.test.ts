// VM switchover state machine with fakes: the happy path journaled step by step, refusals that
// touch nothing, a rollback for every failure point, and a coordinator restarted mid-switchover
// (journal resolved so the guest runs on exactly one host).
import test from 'ava';
import { FailedPreconditionError, UmbraError, UnavailableError } from '../../../shared/errors';
import { silentLogger } from '../../../shared/log';
import { MemoryKvStore } from '../../fakes/memory-kv-store';
import { until } from '../../helpers/until';
import type { SwitchoverEvent } from '../../../coordinator/migrate/switchover-event';
import type { IpPort, MemoryPort, VmAgentPort, VmInfo } from '../../../coordinator/switchover/switchover-ports';
import { CLEANUP_PREFIX, JOURNAL_PREFIX, VmSwitchover } from '../../../coordinator/switchover/vm-switchover';
import type { SwitchoverJournal } from '../../../coordinator/switchover/switchover-state';

const VM = 'g1';
const DEF = JSON.stringify({ id: VM });

interface HostVms {
  local?: { status: string };
  shadow?: { status: string; loaded: boolean };
  unreachable?: boolean;
}

/** Hosts a and b: the guest runs on a, b holds a shadow VM waiting for the device state. */
class World {
  hosts = new Map<string, HostVms>([
    ['a', { local: { status: 'running' } }],
    ['b', { shadow: { status: 'inmigrate', loaded: false } }],
  ]);
  ipActive = 'a';
  ipReason: string | undefined;
  memReason: string | undefined;
  memoryResumed = 0;
  memoryStopped = 0;
  /** Shadow images a guest ran on (written by it): stale until re-synced. */
  taintedImages = new Set<string>();
  resyncs: string[] = [];
  fail = new Set<string>();
  hang?: string;
  /** Set once a call reached the op named by `hang` and stopped there. */
  hung = false;
  calls: string[] = [];
  /** Journal phase seen when each call started. */
  phases: string[] = [];
  token = 0;
  ipToken = 0;
  constructor(readonly store: MemoryKvStore) {}

  /** A call that only records itself (the chained source side, whose parts enter on their own). */
  async enterCall(op: string, host: string): Promise<void> {
    this.calls.push(`${op}@${host}`);
    const j = await this.store.get<SwitchoverJournal>(JOURNAL_PREFIX + VM);
    this.phases.push(j?.phase ?? '-');
  }

  private async enter(op: string, host: string): Promise<void> {
    this.calls.push(`${op}@${host}`);
    const j = await this.store.get<SwitchoverJournal>(JOURNAL_PREFIX + VM);
    this.phases.push(j?.phase ?? '-');
    const h = this.hosts.get(host);
    if (h?.unreachable) throw new UnavailableError(`${host} unreachable`);
    if (this.hang === op) {
      this.hung = true;
      await new Promise(() => undefined);
    }
    if (this.fail.has(op)) throw new UnavailableError(`${op} failed (injected)`);
  }

  runningHosts(): string[] {
    return [...this.hosts].filter(([, h]) => h.local?.status === 'running').map(([id]) => id);
  }

  vms: VmAgentPort = {
    query: async (host, vmId, role) => {
      const h = this.hosts.get(host)!;
      if (h.unreachable) throw new UnavailableError(`${host} unreachable`);
      const info = (r: 'local' | 'shadow', status: string): VmInfo => ({ vmId, role: r, status, running: status === 'running', definitionJson: DEF, incomingUri: r === 'shadow' ? `tcp:${host}:1` : '' });
      if (role !== 'shadow' && h.local) return info('local', h.local.status);
      if (role !== 'local' && h.shadow) return info('shadow', h.shadow.status);
      return undefined;
    },
    prepareShadow: async () => {
      throw new Error('not used');
    },
    removeShadow: async (host) => {
      await this.enter('removeShadow', host);
      const h = this.hosts.get(host)!;
      const had = !!h.shadow;
      h.shadow = undefined;
      return had;
    },
    pause: async (host) => {
      await this.enter(`pause`, host);
      const h = this.hosts.get(host)!;
      if (!h.local && !h.shadow) throw new Error('no vm');
      if (h.local?.status === 'running') h.local.status = 'paused';
      return 1;
    },
    resume: async (host) => {
      await this.enter(host === 'a' ? 'resume-source' : 'resume-destination', host);
      const h = this.hosts.get(host)!;
      if (h.shadow?.loaded) {
        this.taintedImages.add(host); // the shadow QEMU's RAM is the shadow image: the guest now writes into it
        h.local = { status: 'running' };
        h.shadow = undefined;
      } else if (h.local) h.local.status = 'running';
      else throw new Error('nothing to resume');
      return 1;
    },
    migrateDeviceState: async (host, _vm, uri) => {
      await this.enter('migrate', host);
      const dest = uri.split(':')[1];
      this.hosts.get(host)!.local!.status = 'postmigrate';
      this.hosts.get(dest)!.shadow = { status: 'paused', loaded: true };
      return { durationMs: 1, downtimeMs: 1, ramTransferredBytes: 0 };
    },
  };

  memory: MemoryPort = {
    notReadyReason: async () => this.memReason,
    flush: async (vmId) => {
      await this.enter('flush', 'a');
      void vmId;
      return { finalEpoch: 7 };
    },
    flushed: async (_vmId, host, epoch) => void this.notedFlushes.push(`${host}@${epoch}`),
    resume: async () => void this.memoryResumed++,
    stop: async () => void this.memoryStopped++,
    resyncShadow: async (_vmId, host, reason) => {
      await this.enter('resync', 'a'); // the source agent re-sends
      this.resyncs.push(`${host}: ${reason}`);
      this.taintedImages.delete(host);
    },
  };

  /** Every IP switch asked for: [destination, token]. */
  ipSwitches: Array<[string, number]> = [];
  /** Whether each IP switch (and preparation) was marked as a step of the VM switchover. */
  ipPartOf: boolean[] = [];
  /** Flushes the source ran on its own, noted on the memory shadow: host@epoch. */
  notedFlushes: string[] = [];

  ip: IpPort = {
    activeHost: () => this.ipActive,
    notCurrentReason: () => this.ipReason,
    nextFencingToken: async () => ++this.token,
    switchIp: async (vmId, dest, opts): Promise<SwitchoverEvent> => {
      this.ipPartOf.push(opts?.partOfVmSwitchover === true);
      await this.enter(dest === 'a' ? 'switch-ip-back' : 'switch-ip', dest);
      const ok = !this.fail.has(dest === 'a' ? 'ip-back-rolled-back' : 'ip-rolled-back');
      if (ok) this.ipActive = dest;
      // Like ipshadow's switch: its own token from the shared counter.
      this.ipToken = ++this.token;
      this.ipSwitches.push([dest, this.ipToken]);
      return { id: 'ip', timestamp_unix_ms: 0, vm_id: vmId, source_host: 'a', destination_host: dest, status: ok ? 'SUCCEEDED' : 'ROLLED_BACK', fencing_token: this.ipToken, steps: [], total_ms: 1, error: ok ? '' : 'activate failed' };
    },
  };
}

function setup() {
  const store = new MemoryKvStore();
  const world = new World(store);
  const events: Array<{ kind: string; message: string }> = [];
  // The source's replication stops right after the commit unless a test asks for a delay.
  const mk = (sourceCleanupDelayMs = 0) => new VmSwitchover({ store, vms: world.vms, memory: world.memory, ip: world.ip, events: { append: async (e) => void events.push(e) as never }, logger: silentLogger(), sourceCleanupDelayMs });
  return { store, world, events, sw: mk(), mk };
}

test('a switchover pauses, flushes, moves device state, then resumes on the destination and moves the IP together; the pause and the resume are journaled first', async (t) => {
  const { world, sw, store, events } = setup();
  const ev = await sw.trigger(VM, 'b');
  t.is(ev.status, 'SUCCEEDED', ev.error);
  t.deepEqual(world.calls, ['pause@a', 'flush@a', 'migrate@a', 'resume-destination@b', 'switch-ip@b']);
  // The flush and device-state entries are written without waiting (a restart there rolls back
  // like one in pause-source): each call saw its own phase or an earlier one of those three.
  const order = ['pause-source', 'flush-memory', 'migrate-device-state'];
  t.is(world.phases[0], 'pause-source');
  t.true(order.indexOf(world.phases[1]) >= 0 && order.indexOf(world.phases[1]) <= 1, world.phases[1]);
  t.true(order.indexOf(world.phases[2]) >= 0 && order.indexOf(world.phases[2]) <= 2, world.phases[2]);
  // Resume and IP switch start only once the journal says the guest may run there and the address may move.
  t.deepEqual(world.phases.slice(3), ['resume-destination', 'resume-destination']);
  t.deepEqual(ev.steps.map((s) => s.step), ['pause-source', 'flush-memory', 'migrate-device-state', 'resume-destination', 'switch-ip']);
  t.true(ev.steps.every((s) => s.ok && s.duration_ms >= 0));
  t.deepEqual(world.runningHosts(), ['b']);
  t.is(world.hosts.get('a')!.local!.status, 'postmigrate', 'the source stays paused and intact');
  t.is(world.ipActive, 'b');
  await until(() => world.memoryStopped === 1, "the source's replication to stop after the commit");
  t.is(await store.get(CLEANUP_PREFIX + VM), undefined, 'the cleanup entry goes once done');
  t.true(world.ipToken > 0);
  t.is(ev.fencing_token, world.ipToken, 'the event carries the token the IP switch gave the agents');
  t.is(await store.get(JOURNAL_PREFIX + VM), undefined);
  t.is(events[0].kind, 'EVENT_KIND_SWITCHOVER');
  t.deepEqual((await sw.list(VM, 10)).map((e) => e.id), [ev.id]);
});

test("the source's replication stops only after the cleanup delay, from an entry written with the record; a coordinator stopped before it stops it at its next recovery", async (t) => {
  const { world, store, mk } = setup();
  const sw = mk(60_000);
  const stoppedFrom: Array<string | undefined> = [];
  world.memory.stop = async (_vmId, sourceHost) => void stoppedFrom.push(sourceHost);
  const ev = await sw.trigger(VM, 'b');
  t.is(ev.status, 'SUCCEEDED', ev.error);
  t.deepEqual(stoppedFrom, [], 'not yet: the guest has just started on the destination');
  t.like(await store.get(CLEANUP_PREFIX + VM), { vm_id: VM, source_host: 'a', switchover_id: ev.id });
  sw.close(); // the coordinator stops before the delay is over
  await mk(60_000).recover();
  t.deepEqual(stoppedFrom, ['a'], 'only the replication from the old source');
  t.is(await store.get(CLEANUP_PREFIX + VM), undefined);
});

test('a source cleanup that fails keeps its entry for the next recovery', async (t) => {
  const { world, store, mk } = setup();
  let fail = true;
  let attempts = 0;
  world.memory.stop = async () => {
    attempts++;
    if (fail) throw new UnavailableError('a unreachable');
    world.memoryStopped++;
  };
  const sw = mk(0);
  await sw.trigger(VM, 'b');
  await until(() => attempts === 1, 'the delayed stop to be tried');
  t.is(world.memoryStopped, 0);
  t.truthy(await store.get(CLEANUP_PREFIX + VM));
  fail = false;
  await sw.recover();
  t.is(world.memoryStopped, 1);
  t.is(await store.get(CLEANUP_PREFIX + VM), undefined);
});

const refusals: Array<[string, (w: World) => void, RegExp]> = [
  ['no shadow VM', (w) => (w.hosts.get('b')!.shadow = undefined), /no shadow VM/],
  ['shadow not waiting', (w) => (w.hosts.get('b')!.shadow!.status = 'exited'), /shadow VM is exited/],
  ['memory lag', (w) => (w.memReason = 'lag 80 MiB above 64 MiB'), /lag 80 MiB/],
  ['IP config stale', (w) => (w.ipReason = 'shadow holds config version 2, current is 3'), /version 2/],
  ['guest not running', (w) => (w.hosts.get('a')!.local!.status = 'paused'), /guest is paused on the source/],
  ['same host', (w) => (w.ipActive = 'b'), /already active/],
];
for (const [name, arrange, reason] of refusals) {
  test(`refused without touching anything: ${name}`, async (t) => {
    const { world, sw, store } = setup();
    arrange(world);
    const err = await t.throwsAsync(sw.trigger(VM, 'b'), { instanceOf: FailedPreconditionError });
    t.regex(err!.message, reason);
    t.deepEqual(world.calls, []);
    t.is(await store.get(JOURNAL_PREFIX + VM), undefined);
  });
}

const beforeDestinationRuns: Array<[string, string[]]> = [
  ['pause', ['pause@a', 'resume-source@a', 'removeShadow@b']],
  ['flush', ['pause@a', 'flush@a', 'resume-source@a', 'removeShadow@b']],
  ['migrate', ['pause@a', 'flush@a', 'migrate@a', 'resume-source@a', 'removeShadow@b']],
];
for (const [op, calls] of beforeDestinationRuns) {
  test(`a failed ${op} rolls back: the source resumes, the IP stays`, async (t) => {
    const { world, sw, store, events } = setup();
    world.fail.add(op);
    const ev = await sw.trigger(VM, 'b');
    t.is(ev.status, 'ROLLED_BACK');
    t.regex(ev.error, new RegExp(`${op} failed`));
    t.deepEqual(world.calls, calls);
    t.deepEqual(world.runningHosts(), ['a']);
    t.is(world.ipActive, 'a');
    t.is(world.memoryResumed, 1);
    t.deepEqual(world.resyncs, [], 'the guest never ran on the destination: its shadow image stays valid');
    t.is(await store.get(JOURNAL_PREFIX + VM), undefined);
    t.is(events[0].kind, 'EVENT_KIND_SWITCHOVER');
  });
}

for (const op of ['resume-destination', 'ip-rolled-back', 'switch-ip']) {
  test(`a failure at ${op} pauses the destination before the source resumes`, async (t) => {
    const { world, sw } = setup();
    world.fail.add(op);
    const ev = await sw.trigger(VM, 'b');
    t.is(ev.status, 'ROLLED_BACK');
    const names = ev.steps.map((s) => s.step);
    t.true(names.indexOf('rollback-pause-destination') < names.indexOf('rollback-resume-source'));
    t.deepEqual(world.runningHosts(), ['a']);
    t.is(world.ipActive, 'a');
    // The destination may have run the guest on its shadow image: that image is re-synced before rounds resume.
    t.deepEqual(world.resyncs.map((r) => r.split(':')[0]), ['b']);
    t.is(world.taintedImages.size, 0, 'no shadow image a guest wrote into is left for a later switchover');
    t.true(names.indexOf('rollback-resync-shadow') > names.indexOf('rollback-resume-source'));
    t.true(names.indexOf('rollback-resync-shadow') < names.indexOf('rollback-resume-replication'));
    t.true(ev.steps.find((s) => s.step === 'rollback-resync-shadow')!.ok);
  });
}

test('a failed re-sync request is recorded on the rollback (the memory module keeps it pending); the guest still runs on the source', async (t) => {
  const { world, sw } = setup();
  world.fail.add('resume-destination');
  world.fail.add('resync');
  const ev = await sw.trigger(VM, 'b');
  t.is(ev.status, 'ROLLED_BACK');
  const step = ev.steps.find((s) => s.step === 'rollback-resync-shadow');
  t.false(step?.ok);
  t.regex(step!.error, /resync failed/);
  t.deepEqual(world.runningHosts(), ['a']);
  t.is(world.memoryResumed, 1);
});

test('when the destination cannot be paused, the source stays paused (never two copies) and the journal is kept', async (t) => {
  const { world, sw, store, events, mk } = setup();
  world.fail.add('switch-ip');
  const origPause = world.vms.pause;
  world.vms.pause = async (host, vmId) => {
    if (host === 'b') throw new UnavailableError('b unreachable');
    return origPause(host, vmId);
  };
  const ev = await sw.trigger(VM, 'b');
  t.is(ev.status, 'FAILED');
  t.deepEqual(world.runningHosts(), ['b']);
  t.is(events[0].kind, 'EVENT_KIND_ALERT');
  t.is((await store.get<SwitchoverJournal>(JOURNAL_PREFIX + VM))?.phase, 'rollback');
  await t.throwsAsync(sw.trigger(VM, 'b'), { message: /unresolved switchover/ });
  // Once b answers again, recovery finishes the rollback.
  world.vms.pause = origPause;
  const [resolved] = await mk().recover();
  t.is(resolved.status, 'ROLLED_BACK');
  t.deepEqual(world.runningHosts(), ['a']);
  t.is(await store.get(JOURNAL_PREFIX + VM), undefined);
});

/** Runs a switchover that hangs at `op` (the coordinator "dies" there), then a fresh instance recovers. */
async function crashAt(op: string, arrange: (w: World) => void = () => undefined) {
  const s = setup();
  s.world.hang = op;
  void s.sw.trigger(VM, 'b');
  await until(() => s.world.hung, `the switchover to reach ${op}`);
  s.world.hang = undefined;
  arrange(s.world);
  const journal = await s.store.get<SwitchoverJournal>(JOURNAL_PREFIX + VM);
  return { ...s, journal, recovered: () => s.mk().recover() };
}

test('restart during the device-state migration: rolled back, the guest runs on the source only', async (t) => {
  const { world, journal, recovered, store } = await crashAt('migrate');
  t.is(journal?.phase, 'migrate-device-state');
  const [ev] = await recovered();
  t.is(ev.status, 'ROLLED_BACK');
  t.regex(ev.error, /coordinator restarted during migrate-device-state/);
  t.deepEqual(world.runningHosts(), ['a']);
  t.is(world.ipActive, 'a');
  t.is(await store.get(JOURNAL_PREFIX + VM), undefined);
});

test('restart after the destination resumed: rolled forward (IP moves), the guest runs on the destination only', async (t) => {
  const { world, journal, recovered } = await crashAt('switch-ip', (w) => {
    // The resume went through before the crash.
    t.deepEqual(w.runningHosts(), ['b']);
  });
  t.is(journal?.phase, 'resume-destination');
  t.true(journal?.ip_may_move);
  const [ev] = await recovered();
  t.is(ev.status, 'SUCCEEDED');
  t.deepEqual(world.runningHosts(), ['b']);
  t.is(world.ipActive, 'b');
  t.is(ev.fencing_token, world.ipToken, 'rolled forward: the event carries the IP switch token');
});

test('restart while resume was in flight and the destination is not running: destination paused, source resumed', async (t) => {
  const { world, journal, recovered } = await crashAt('resume-destination');
  t.is(journal?.phase, 'resume-destination');
  const [ev] = await recovered();
  t.is(ev.status, 'ROLLED_BACK');
  t.deepEqual(world.runningHosts(), ['a']);
  t.deepEqual(world.resyncs, [], 'b still holds it as a shadow once paused: it never ran there, its image stays valid');
});

test('restart after the guest ran on the destination and was paused there: rolled back, and its image on the destination copied again', async (t) => {
  const { world, journal, recovered } = await crashAt('switch-ip', (w) => (w.hosts.get('b')!.local!.status = 'paused'));
  t.is(journal?.phase, 'resume-destination');
  const [ev] = await recovered();
  t.is(ev.status, 'ROLLED_BACK');
  t.deepEqual(world.runningHosts(), ['a']);
  t.deepEqual(world.resyncs.map((r) => r.split(':')[0]), ['b'], 'b promoted it to its local VM: the guest ran there');
});

test('restart while resume was in flight and the destination is unreachable: wait (source stays paused), resolve later', async (t) => {
  const { world, recovered, store } = await crashAt('resume-destination', (w) => (w.hosts.get('b')!.unreachable = true));
  t.deepEqual(await recovered(), []);
  t.deepEqual(world.runningHosts(), []);
  t.truthy(await store.get(JOURNAL_PREFIX + VM));
  world.hosts.get('b')!.unreachable = false;
  const [ev] = await recovered();
  t.is(ev.status, 'ROLLED_BACK');
  t.deepEqual(world.runningHosts(), ['a']);
});

test('journal transitions only move forward or into rollback', async (t) => {
  const { advance } = await import('../../../coordinator/switchover/switchover-state');
  const j = { phase: 'switch-ip', destination_may_run: true, id: 'x' } as SwitchoverJournal;
  t.throws(() => advance(j, 'pause-source'), { instanceOf: FailedPreconditionError });
  t.throws(() => advance({ ...j, phase: 'rollback' }, 'commit'), { instanceOf: FailedPreconditionError });
  t.true(advance({ ...j, phase: 'migrate-device-state', destination_may_run: false }, 'resume-destination').destination_may_run);
});

test('a rollback after the IP already moved puts the address back on the source (fresh token) before the source resumes', async (t) => {
  const { world, sw, store } = setup();
  world.fail.add('resume-destination'); // the IP switch, run alongside, succeeds
  const ev = await sw.trigger(VM, 'b');
  t.is(ev.status, 'ROLLED_BACK');
  const names = ev.steps.map((s) => s.step);
  t.true(ev.steps.find((s) => s.step === 'switch-ip')!.ok, 'the address had moved');
  t.true(names.indexOf('rollback-pause-destination') < names.indexOf('rollback-switch-ip'));
  t.true(names.indexOf('rollback-switch-ip') < names.indexOf('rollback-resume-source'));
  t.true(world.calls.indexOf('switch-ip-back@a') < world.calls.indexOf('resume-source@a'));
  t.is(world.ipActive, 'a');
  t.deepEqual(world.ipSwitches.map(([h]) => h), ['b', 'a']);
  t.deepEqual(world.ipPartOf, [true, true], 'both IP switches are audited as steps of this switchover');
  t.true(world.ipSwitches[1][1] > world.ipSwitches[0][1], 'the move back is fenced with a newer token');
  t.deepEqual(world.runningHosts(), ['a']);
  t.is(await store.get(JOURNAL_PREFIX + VM), undefined);
});

test('a rollback whose IP switch never moved the address does not switch it again', async (t) => {
  const { world, sw } = setup();
  world.fail.add('ip-rolled-back');
  const ev = await sw.trigger(VM, 'b');
  t.is(ev.status, 'ROLLED_BACK');
  t.true(ev.steps.find((s) => s.step === 'rollback-switch-ip')!.ok);
  t.deepEqual(world.ipSwitches.map(([h]) => h), ['b']);
  t.is(world.ipActive, 'a');
  t.deepEqual(world.runningHosts(), ['a']);
});

test('an address that cannot be moved back: the source still resumes, FAILED with the journal kept, and recovery moves it back later', async (t) => {
  const { world, sw, store, events, mk } = setup();
  world.fail.add('resume-destination');
  world.fail.add('ip-back-rolled-back');
  const ev = await sw.trigger(VM, 'b');
  t.is(ev.status, 'FAILED');
  t.regex(ev.error, /not moved back/);
  t.is(events[0].kind, 'EVENT_KIND_ALERT');
  t.deepEqual(world.runningHosts(), ['a'], 'the guest is not kept down for its address');
  t.is(world.ipActive, 'b');
  const kept = await store.get<SwitchoverJournal>(JOURNAL_PREFIX + VM);
  t.is(kept?.phase, 'rollback');
  t.true(kept?.ip_may_move);
  world.fail.delete('ip-back-rolled-back');
  const [resolved] = await mk().recover();
  t.is(resolved.status, 'ROLLED_BACK');
  t.is(world.ipActive, 'a');
  t.deepEqual(world.runningHosts(), ['a']);
  t.is(await store.get(JOURNAL_PREFIX + VM), undefined);
});

test('restart after the IP moved while the resume was in flight, destination not running: the address goes back, the guest runs on the source only', async (t) => {
  const { world, journal, recovered } = await crashAt('resume-destination');
  t.is(journal?.phase, 'resume-destination');
  t.true(journal?.ip_may_move);
  t.is(world.ipActive, 'b', 'the IP switch ran alongside the (hung) resume');
  const [ev] = await recovered();
  t.is(ev.status, 'ROLLED_BACK');
  t.is(world.ipActive, 'a');
  t.deepEqual(world.ipSwitches.map(([h]) => h), ['b', 'a']);
  t.deepEqual(world.runningHosts(), ['a']);
});

test('the journal entry of the resume is durable before the resume and the IP switch start, even when earlier entries were written without waiting', async (t) => {
  const { world, sw, store } = setup();
  const puts: string[] = [];
  const origPut = store.put.bind(store);
  // A slow store: each write lands 5 ms after it was asked for.
  store.put = async (key: string, value: unknown) => {
    await new Promise((r) => setTimeout(r, 5));
    await origPut(key, value);
    puts.push((value as SwitchoverJournal).phase);
  };
  const ev = await sw.trigger(VM, 'b');
  t.is(ev.status, 'SUCCEEDED', ev.error);
  t.deepEqual(puts.slice(0, 4), ['pause-source', 'flush-memory', 'migrate-device-state', 'resume-destination'], 'written in order');
  t.deepEqual(world.phases.slice(3), ['resume-destination', 'resume-destination']);
});

test('recovery that listed a journal while its switchover was running leaves the finished switchover alone (no second running copy)', async (t) => {
  const { world, sw, store } = setup();
  // The device state waits for a gate: the switchover holds the VM's lock meanwhile.
  let open: () => void = () => undefined;
  const gate = new Promise<void>((r) => (open = r));
  const origMigrate = world.vms.migrateDeviceState;
  world.vms.migrateDeviceState = async (...args) => {
    await gate;
    return origMigrate(...args);
  };
  const running = sw.trigger(VM, 'b');
  await new Promise((r) => setTimeout(r, 20));
  t.truthy(await store.get(JOURNAL_PREFIX + VM), 'journal present while the switchover runs');
  // Recovery lists that journal now and queues behind the switchover for the VM's lock.
  const recovering = sw.recover();
  await new Promise((r) => setTimeout(r, 20));
  open();
  t.is((await running).status, 'SUCCEEDED');
  t.deepEqual(await recovering, [], 'nothing left to resolve once the switchover finished');
  t.deepEqual(world.runningHosts(), ['b']);
  t.is(world.ipActive, 'b');
  t.is(await store.get(JOURNAL_PREFIX + VM), undefined);
});

/**
 * The source agent's one-call side (switchOut) over the world's own pause, flush and device state,
 * as the agent runs them: each only after the one before succeeded, a failure reported as the step.
 */
function withSwitchOut(world: World, opts: { callFails?: UmbraError; waitedFor?: string[] } = {}): void {
  world.vms.switchOut = async (host, vmId, uri, timeouts) => {
    await world.enterCall('switchOut', host);
    if (opts.callFails) throw opts.callFails;
    opts.waitedFor?.push(timeouts.destinationHost ?? '');
    const out = { pauseMs: 0, flushMs: 0, finalEpoch: 0, migrateMs: 0, qemuDowntimeMs: 0, ramTransferredBytes: 0, failedMs: 2, error: '', pausedAtUnixMs: 1_000 };
    const steps: Array<['pause-source' | 'flush-memory' | 'migrate-device-state', () => Promise<void>]> = [
      ['pause-source', async () => void (out.pauseMs = await world.vms.pause(host, vmId))],
      ['flush-memory', async () => void (out.finalEpoch = (await world.memory.flush(vmId, 1000)).finalEpoch, (out.flushMs = 3))],
      ['migrate-device-state', async () => void (out.migrateMs = (await world.vms.migrateDeviceState(host, vmId, uri, 1000)).durationMs)],
    ];
    for (const [step, run] of steps) {
      try {
        await run();
      } catch (err) {
        return { ...out, failedStep: step, error: (err as Error).message };
      }
    }
    return out;
  };
}

test('chained source side: one agent call pauses, flushes and moves the device state; recorded as the three steps, the call round trip in the pause; no journal write between them', async (t) => {
  const { world, sw, store, events } = setup();
  const waitedFor: string[] = [];
  withSwitchOut(world, { waitedFor });
  const ev = await sw.trigger(VM, 'b');
  t.is(ev.status, 'SUCCEEDED', ev.error);
  t.deepEqual(world.calls, ['switchOut@a', 'pause@a', 'flush@a', 'migrate@a', 'resume-destination@b', 'switch-ip@b']);
  t.deepEqual(waitedFor, ['b'], "the flush is told to wait for the destination's shadow only");
  // Only the pause's entry is written before the call; the resume's entry before the resume.
  t.deepEqual(world.phases, ['pause-source', 'pause-source', 'pause-source', 'pause-source', 'resume-destination', 'resume-destination']);
  t.deepEqual(ev.steps.map((s) => s.step), ['pause-source', 'flush-memory', 'migrate-device-state', 'resume-destination', 'switch-ip']);
  t.true(ev.steps.every((s) => s.ok));
  t.is(ev.steps[1].duration_ms, 3, "the flush's time is the agent's");
  t.true(ev.steps[0].duration_ms >= 1, 'the pause carries the agent time and the round trip');
  t.deepEqual(world.runningHosts(), ['b']);
  t.is(world.hosts.get('a')!.local!.status, 'postmigrate');
  t.is(world.ipActive, 'b');
  t.is(await store.get(JOURNAL_PREFIX + VM), undefined);
  t.deepEqual(events.map((e) => e.kind), ['EVENT_KIND_MEMORY_SHADOW_FLUSHED', 'EVENT_KIND_SWITCHOVER']);
  t.regex(events[0].message, /epoch 7/);
  t.deepEqual(world.notedFlushes, ['a@7'], "the final epoch is noted on the memory shadow's record");
});

for (const [op, failedStep, calls] of [
  ['pause', 'pause-source', ['switchOut@a', 'pause@a', 'resume-source@a', 'removeShadow@b']],
  ['flush', 'flush-memory', ['switchOut@a', 'pause@a', 'flush@a', 'resume-source@a', 'removeShadow@b']],
  ['migrate', 'migrate-device-state', ['switchOut@a', 'pause@a', 'flush@a', 'migrate@a', 'resume-source@a', 'removeShadow@b']],
] as const) {
  test(`chained source side: a failed ${op} in the agent's call is recorded as ${failedStep} and rolls back to the source`, async (t) => {
    const { world, sw, store, events } = setup();
    withSwitchOut(world);
    world.fail.add(op);
    const ev = await sw.trigger(VM, 'b');
    t.is(ev.status, 'ROLLED_BACK');
    t.deepEqual(world.calls, [...calls]);
    const failed = ev.steps.find((s) => !s.ok)!;
    t.is(failed.step, failedStep);
    t.regex(failed.error, new RegExp(`${op} failed`));
    t.deepEqual(world.runningHosts(), ['a']);
    t.is(world.ipActive, 'a');
    t.is(world.memoryResumed, 1);
    t.is(await store.get(JOURNAL_PREFIX + VM), undefined);
    t.deepEqual(events.map((e) => e.kind), ['EVENT_KIND_SWITCHOVER'], 'no flush recorded for a rolled-back switchover');
  });
}

test('chained source side: an agent without the call (UNIMPLEMENTED) gets the three calls; a call that fails otherwise rolls back as a failed pause', async (t) => {
  const old = setup();
  withSwitchOut(old.world, { callFails: new UmbraError('UNIMPLEMENTED', 'unknown method SwitchOutVm') });
  const ev = await old.sw.trigger(VM, 'b');
  t.is(ev.status, 'SUCCEEDED', ev.error);
  t.deepEqual(old.world.calls, ['switchOut@a', 'pause@a', 'flush@a', 'migrate@a', 'resume-destination@b', 'switch-ip@b']);

  const down = setup();
  withSwitchOut(down.world, { callFails: new UnavailableError('a unreachable') });
  const ev2 = await down.sw.trigger(VM, 'b');
  t.is(ev2.status, 'ROLLED_BACK');
  t.is(ev2.steps[0].step, 'pause-source');
  t.false(ev2.steps[0].ok);
  t.regex(ev2.steps[0].error, /a unreachable/);
  t.deepEqual(down.world.runningHosts(), ['a']);
});

/**
 * The destination agent's armed resume over the world: waits until its shadow has loaded the
 * device state, then resumes it (the world's resume); a pause of that host first calls it off
 * with ABORTED, as the agent does. `unimplemented`: an agent without the call.
 */
function withArmedResume(world: World, opts: { unimplemented?: boolean } = {}): void {
  let cancel: ((err: Error) => void) | undefined;
  const pause = world.vms.pause;
  world.vms.pause = async (host, vmId) => {
    if (host === 'b') cancel?.(new UmbraError('ABORTED', 'armed resume cancelled (paused)'));
    return pause(host, vmId);
  };
  const removeShadow = world.vms.removeShadow;
  world.vms.removeShadow = async (host, vmId) => {
    if (host === 'b') cancel?.(new UmbraError('ABORTED', 'armed resume cancelled (shadow removed)'));
    return removeShadow(host, vmId);
  };
  world.vms.resumeWhenLoaded = async (host, vmId) => {
    await world.enterCall('arm', host);
    if (opts.unimplemented) throw new UmbraError('UNIMPLEMENTED', 'unknown method ResumeVmWhenLoaded');
    await new Promise<void>((resolve, reject) => {
      let off = false;
      cancel = (err) => ((off = true), reject(err));
      const poll = () => (off ? undefined : world.hosts.get(host)!.shadow?.loaded ? resolve() : setTimeout(poll, 1));
      poll();
    });
    return { durationMs: await world.vms.resume(host, vmId), waitedMs: 0, runningAtUnixMs: 1_042 };
  };
}

/** Every journal entry written, in order (phase and the two "may" flags). */
function journalWrites(store: MemoryKvStore): Array<{ phase: string; mayRun: boolean; ipMayMove: boolean }> {
  const writes: Array<{ phase: string; mayRun: boolean; ipMayMove: boolean }> = [];
  const put = store.put.bind(store);
  store.put = async (key: string, value: unknown) => {
    if (key.startsWith(JOURNAL_PREFIX)) {
      const j = value as SwitchoverJournal;
      writes.push({ phase: j.phase, mayRun: j.destination_may_run, ipMayMove: j.ip_may_move ?? false });
    }
    return put(key, value);
  };
  return writes;
}

test('armed resume: the destination is armed before the source pauses and runs the guest once the device state loaded, with no resume call after the switch-out', async (t) => {
  const { world, sw, store } = setup();
  withSwitchOut(world);
  withArmedResume(world);
  const writes = journalWrites(store);
  const ev = await sw.trigger(VM, 'b');
  t.is(ev.status, 'SUCCEEDED', ev.error);
  // The resume (the arm's, once the device state loaded) and the IP switch run side by side.
  t.deepEqual(world.calls.slice(0, 5), ['arm@b', 'switchOut@a', 'pause@a', 'flush@a', 'migrate@a']);
  t.deepEqual(world.calls.slice(5).sort(), ['resume-destination@b', 'switch-ip@b']);
  // The first entry, durable before the arm, already allows the guest on b and the address to move.
  t.deepEqual(writes[0], { phase: 'pause-source', mayRun: true, ipMayMove: true });
  t.deepEqual(ev.steps.map((s) => s.step), ['pause-source', 'flush-memory', 'migrate-device-state', 'resume-destination', 'switch-ip']);
  t.true(ev.steps.every((s) => s.ok));
  t.deepEqual(world.runningHosts(), ['b']);
  t.is(world.ipActive, 'b');
  t.deepEqual(world.resyncs, []);
  t.is(await store.get(JOURNAL_PREFIX + VM), undefined);
  t.is(ev.guest_paused_ms, 42, "source pause to destination running, from the agents' instants");
});

test('armed resume, the source fails before its device state left: no device state can be on the destination, so the source resumes without asking it (reachable or not) and the reset calls the arm off', async (t) => {
  for (const destinationDown of [false, true]) {
    const { world, sw, store } = setup();
    withSwitchOut(world);
    withArmedResume(world);
    if (destinationDown) {
      const arm = world.vms.resumeWhenLoaded!;
      world.vms.resumeWhenLoaded = async (host, vmId, ms) => {
        const armed = arm(host, vmId, ms);
        world.hosts.get('b')!.unreachable = true;
        return armed;
      };
    }
    world.fail.add('flush');
    const ev = await sw.trigger(VM, 'b');
    t.is(ev.status, 'ROLLED_BACK', ev.error);
    t.deepEqual(world.calls, ['arm@b', 'switchOut@a', 'pause@a', 'flush@a', 'resume-source@a', 'removeShadow@b']);
    t.deepEqual(ev.steps.map((s) => s.step), ['pause-source', 'flush-memory', 'rollback-resume-source', 'rollback-resume-replication', 'rollback-reset-shadow']);
    t.deepEqual(world.runningHosts(), ['a']);
    t.is(world.ipActive, 'a');
    t.deepEqual(world.resyncs, [], 'the guest never ran on b');
    t.is(await store.get(JOURNAL_PREFIX + VM), undefined);
  }
});

test('armed resume, the device state fails: it may have reached the destination, which is paused first (calling the arm off); the shadow is not re-copied since the guest did not run there', async (t) => {
  const { world, sw, store } = setup();
  withSwitchOut(world);
  withArmedResume(world);
  world.fail.add('migrate');
  const ev = await sw.trigger(VM, 'b');
  t.is(ev.status, 'ROLLED_BACK');
  t.deepEqual(world.calls, ['arm@b', 'switchOut@a', 'pause@a', 'flush@a', 'migrate@a', 'pause@b', 'resume-source@a', 'removeShadow@b']);
  // The address may have moved from the first entry on: the rollback checks (it had not).
  t.deepEqual(ev.steps.map((s) => s.step), ['pause-source', 'flush-memory', 'migrate-device-state', 'rollback-pause-destination', 'rollback-switch-ip', 'rollback-resume-source', 'rollback-resume-replication', 'rollback-reset-shadow']);
  t.deepEqual(world.ipSwitches, [], 'not switched back: it never moved');
  t.deepEqual(world.runningHosts(), ['a']);
  t.deepEqual(world.resyncs, [], 'the arm was called off: the guest never ran on b');
  t.is(await store.get(JOURNAL_PREFIX + VM), undefined);
});

test('armed resume, the switch-out call is lost (its progress unknown) and the destination is unreachable: the source stays paused, the journal is kept', async (t) => {
  const { world, sw, store } = setup();
  withSwitchOut(world, { callFails: new UnavailableError('a unreachable') });
  withArmedResume(world);
  const arm = world.vms.resumeWhenLoaded!;
  world.vms.resumeWhenLoaded = async (host, vmId, ms) => {
    const p = arm(host, vmId, ms);
    world.hosts.get('b')!.unreachable = true;
    return p;
  };
  const ev = await sw.trigger(VM, 'b');
  t.is(ev.status, 'FAILED');
  t.regex(ev.error, /source kept paused/);
  t.truthy(await store.get(JOURNAL_PREFIX + VM));
});

test('armed resume, the IP switch fails after the guest ran on the destination: paused there, source resumed, and the shadow re-copied', async (t) => {
  const { world, sw } = setup();
  withSwitchOut(world);
  withArmedResume(world);
  world.fail.add('ip-rolled-back');
  const ev = await sw.trigger(VM, 'b');
  t.is(ev.status, 'ROLLED_BACK');
  t.deepEqual(world.runningHosts(), ['a']);
  t.is(world.ipActive, 'a');
  t.is(world.resyncs.length, 1, 'the guest ran on b: its image is copied again');
});

test('armed resume on an agent without it (UNIMPLEMENTED): the guest is resumed by the explicit call after the switch-out', async (t) => {
  const { world, sw } = setup();
  withSwitchOut(world);
  withArmedResume(world, { unimplemented: true });
  const ev = await sw.trigger(VM, 'b');
  t.is(ev.status, 'SUCCEEDED', ev.error);
  t.deepEqual(world.calls.slice(0, 5), ['arm@b', 'switchOut@a', 'pause@a', 'flush@a', 'migrate@a']);
  t.deepEqual(world.calls.slice(5).sort(), ['resume-destination@b', 'switch-ip@b']);
  t.deepEqual(world.runningHosts(), ['b']);
});

test('armed resume, coordinator restart before the device state moved: the destination (not running) is paused and the source resumed', async (t) => {
  const s = setup();
  withArmedResume(s.world);
  s.world.hang = 'flush';
  void s.sw.trigger(VM, 'b');
  await until(() => s.world.hung, 'the switchover to reach the flush');
  s.world.hang = undefined;
  const journal = await s.store.get<SwitchoverJournal>(JOURNAL_PREFIX + VM);
  t.true(journal?.destination_may_run, 'armed from the first entry');
  const [resolved] = await s.mk().recover();
  t.is(resolved.status, 'ROLLED_BACK');
  t.true(s.world.calls.includes('pause@b'));
  t.deepEqual(s.world.runningHosts(), ['a']);
});

/** The world's IP port with prepareSwitch: prepared handles complete through switchIp, abandons and withdrawals are recorded. */
function withPreparedIp(world: World, opts: { failPrepare?: boolean } = {}) {
  const abandoned: string[] = [];
  const withdrawn: string[] = [];
  const completed: number[] = [];
  /** The wait for the source guest's pause each complete() asked for (0: none). */
  const afterPause: number[] = [];
  // Like the source agent: with the option, the address leaves once the source guest is paused.
  const sourcePaused = async () => {
    while (world.hosts.get('a')!.local?.status === 'running') await new Promise((r) => setTimeout(r, 1));
  };
  const ip: IpPort = {
    ...world.ip,
    prepareSwitch: async (vmId, dest, o) => {
      world.ipPartOf.push(o?.partOfVmSwitchover === true);
      world.calls.push(`prepare-ip@${dest}`);
      if (opts.failPrepare) throw new UnavailableError('prepare failed (injected)');
      let settled: Promise<SwitchoverEvent> | undefined;
      return {
        fencingToken: 99,
        complete: (o) => {
          afterPause.push(o?.afterSourceGuestPausedMs ?? 0);
          return (settled ??= (o?.afterSourceGuestPausedMs ? sourcePaused() : Promise.resolve()).then(() => world.ip.switchIp(vmId, dest)).then((ev) => (completed.push(ev.fencing_token), ev)));
        },
        abandon: (why) => (settled ??= (abandoned.push(why), Promise.resolve({ id: 'ip', timestamp_unix_ms: 0, vm_id: vmId, source_host: 'a', destination_host: dest, status: 'ROLLED_BACK', fencing_token: 99, steps: [], total_ms: 0, error: why } as SwitchoverEvent))),
        withdraw: async (why) => {
          if (settled) throw new Error('settled already');
          withdrawn.push(why);
          settled = Promise.reject(new Error('withdrawn'));
          settled.catch(() => undefined);
        },
      };
    },
  };
  return { ip, abandoned, withdrawn, completed, afterPause };
}

for (const [name, arrange, reason] of refusals.filter(([n]) => ['no shadow VM', 'memory lag', 'guest not running'].includes(n))) {
  test(`refused by the agents' answers with the IP prepared beside them: withdrawn, nothing recorded or moved: ${name}`, async (t) => {
    const { world, store, events } = setup();
    arrange(world);
    const p = withPreparedIp(world);
    const sw = new VmSwitchover({ store, vms: world.vms, memory: world.memory, ip: p.ip, events: { append: async (e) => void events.push(e) as never }, logger: silentLogger() });
    const err = await t.throwsAsync(sw.trigger(VM, 'b'), { instanceOf: FailedPreconditionError });
    t.regex(err!.message, reason);
    t.deepEqual(world.calls, ['prepare-ip@b']);
    t.is(p.withdrawn.length, 1);
    t.regex(p.withdrawn[0], reason);
    t.deepEqual(p.abandoned, []);
    t.deepEqual(p.completed, []);
    t.is(await store.get(JOURNAL_PREFIX + VM), undefined);
    t.deepEqual(events, []);
    t.is(world.ipActive, 'a');
  });
}

test("refused by the coordinator's own checks: the IP switch is not even prepared", async (t) => {
  const { world, store, events } = setup();
  world.ipReason = 'shadow holds config version 2, current is 3';
  const p = withPreparedIp(world);
  const sw = new VmSwitchover({ store, vms: world.vms, memory: world.memory, ip: p.ip, events: { append: async (e) => void events.push(e) as never }, logger: silentLogger() });
  await t.throwsAsync(sw.trigger(VM, 'b'), { instanceOf: FailedPreconditionError, message: /version 2/ });
  t.deepEqual(world.calls, []);
});

test("the IP switch is prepared while the agents are still answering the checks, and its token is above the journal's", async (t) => {
  const { world, store, events } = setup();
  const p = withPreparedIp(world);
  const query = world.vms.query;
  // The destination answers only once the IP preparation has started: in sequence this would hang.
  world.vms = { ...world.vms, query: async (host, vmId, role) => (host === 'b' && (await until(() => world.calls.includes('prepare-ip@b'), 'the IP preparation to start')), query(host, vmId, role)) };
  let tokens = 0;
  const journalTokens: number[] = [];
  const ip: IpPort = { ...p.ip, nextFencingToken: async () => (journalTokens.push(++tokens), tokens), prepareSwitch: async (vmId, dest) => (++tokens, p.ip.prepareSwitch!(vmId, dest)) };
  const sw = new VmSwitchover({ store, vms: world.vms, memory: world.memory, ip, events: { append: async (e) => void events.push(e) as never }, logger: silentLogger() });
  const ev = await sw.trigger(VM, 'b');
  t.is(ev.status, 'SUCCEEDED', ev.error);
  t.deepEqual(journalTokens, [1], 'the journal took the first token, the IP switch the next');
  t.is(p.completed.length, 1);
});

test('IP prepared ahead: prepared before the pause, completed with the resume, never abandoned', async (t) => {
  const { world, store, events } = setup();
  const p = withPreparedIp(world);
  const sw = new VmSwitchover({ store, vms: world.vms, memory: world.memory, ip: p.ip, events: { append: async (e) => void events.push(e) as never }, logger: silentLogger() });
  const ev = await sw.trigger(VM, 'b');
  t.is(ev.status, 'SUCCEEDED', ev.error);
  t.deepEqual(world.calls, ['prepare-ip@b', 'pause@a', 'flush@a', 'migrate@a', 'resume-destination@b', 'switch-ip@b']);
  t.is(p.completed.length, 1);
  t.deepEqual(p.abandoned, []);
  t.is(world.ipActive, 'b');
  t.is(ev.fencing_token, world.ipToken);
  t.is(world.ipPartOf[0], true, 'the preparation marks the IP switch as a step of this switchover');
});

test('IP prepared ahead and a step before the resume fails: the prepared switch is abandoned, the address never moves', async (t) => {
  const { world, store, events } = setup();
  world.fail.add('flush');
  const p = withPreparedIp(world);
  const sw = new VmSwitchover({ store, vms: world.vms, memory: world.memory, ip: p.ip, events: { append: async (e) => void events.push(e) as never }, logger: silentLogger() });
  const ev = await sw.trigger(VM, 'b');
  t.is(ev.status, 'ROLLED_BACK');
  t.false(world.calls.includes('switch-ip@b'));
  t.is(p.abandoned.length, 1);
  t.deepEqual(p.completed, []);
  t.is(world.ipActive, 'a');
  t.deepEqual(world.runningHosts(), ['a']);
});

test('an IP switch that cannot be prepared ahead prepares when it runs (same outcome)', async (t) => {
  const { world, store, events } = setup();
  const p = withPreparedIp(world, { failPrepare: true });
  const sw = new VmSwitchover({ store, vms: world.vms, memory: world.memory, ip: p.ip, events: { append: async (e) => void events.push(e) as never }, logger: silentLogger() });
  const ev = await sw.trigger(VM, 'b');
  t.is(ev.status, 'SUCCEEDED', ev.error);
  t.deepEqual(world.calls, ['prepare-ip@b', 'pause@a', 'flush@a', 'migrate@a', 'resume-destination@b', 'switch-ip@b']);
  t.is(world.ipActive, 'b');
});

test('armed, with the IP prepared ahead: the address switch goes out with the switch-out and leaves the source only after its guest paused', async (t) => {
  const { world, store, events } = setup();
  withSwitchOut(world);
  withArmedResume(world);
  const p = withPreparedIp(world);
  const sw = new VmSwitchover({ store, vms: world.vms, memory: world.memory, ip: p.ip, events: { append: async (e) => void events.push(e) as never }, logger: silentLogger() });
  const ev = await sw.trigger(VM, 'b');
  t.is(ev.status, 'SUCCEEDED', ev.error);
  t.true(p.afterPause[0] > 0, 'asked to wait for the pause');
  t.true(world.calls.indexOf('switch-ip@b') > world.calls.indexOf('pause@a'), 'moved after the pause');
  t.is(p.completed.length, 1);
  t.deepEqual(p.abandoned, []);
  t.is(world.ipActive, 'b');
  t.deepEqual(world.runningHosts(), ['b']);
  t.is(ev.fencing_token, world.ipToken);
});

test('armed, with the IP sent with the switch-out, and the flush fails after the pause: the address (moved meanwhile) is switched back before the source resumes', async (t) => {
  const { world, store, events } = setup();
  withSwitchOut(world);
  withArmedResume(world);
  world.fail.add('flush');
  const p = withPreparedIp(world);
  const sw = new VmSwitchover({ store, vms: world.vms, memory: world.memory, ip: p.ip, events: { append: async (e) => void events.push(e) as never }, logger: silentLogger() });
  const ev = await sw.trigger(VM, 'b');
  t.is(ev.status, 'ROLLED_BACK');
  t.true(world.calls.indexOf('switch-ip-back@a') >= 0, 'switched back');
  t.true(world.calls.indexOf('switch-ip-back@a') < world.calls.indexOf('resume-source@a'), 'before the source resumes');
  t.is(world.ipActive, 'a');
  t.deepEqual(world.runningHosts(), ['a']);
  t.deepEqual(world.resyncs, [], 'no device state left the source: the guest never ran on b');
});

// "Best destination" and routing: the ranker's best host among those with a ready shadow, refusals
// naming each host's reason, a recommended host set aside when not ready, the VM route taken for
// QEMU VMs (with progress), and one switchover per VM at a time.
import test from 'ava';
import { FailedPreconditionError, NotFoundError } from '../../../shared/errors';
import { EMPTY_USAGE, type HostRecord } from '../../../shared/host-types';
import type { IpSwitchover } from '../../../coordinator/migrate/ip-switchover';
import type { SwitchoverEvent } from '../../../coordinator/migrate/switchover-event';
import { CapacityHeadroomRanker } from '../../../coordinator/rank/capacity-headroom-ranker';
import { hostViewOf, vmViewOf } from '../../../coordinator/shadow/host-views';
import { chooseBestDestination } from '../../../coordinator/switchover/best-destination';
import { MigrationRoutes, type MigrationProgress, type VmSwitchoverRoute } from '../../../coordinator/switchover/migration-routes';
import { hostFacts } from '../../fakes/host-facts';

const GIB = 2 ** 30;

function rec(id: string, threads: number, state: HostRecord['state'] = 'HOST_STATE_UP'): HostRecord {
  const f = hostFacts(id, { failure_domain: id });
  f.capacity.cpu_threads = threads;
  f.capacity.memory_bytes = 8 * GIB;
  return { facts: f, state, registered_at_unix_ms: 0, last_heartbeat_unix_ms: 0, state_changed_at_unix_ms: 0, usage: EMPTY_USAGE };
}

function event(vmId: string, source: string, dest: string, status: SwitchoverEvent['status'] = 'SUCCEEDED'): SwitchoverEvent {
  return { id: `sw-${dest}`, timestamp_unix_ms: 1, vm_id: vmId, source_host: source, destination_host: dest, status, fencing_token: 1, steps: [], total_ms: 1, error: '' };
}

/** Hosts a (source), b (small: 2 threads), c (big: 32 threads), d (down). */
class World {
  hosts = [rec('a', 16), rec('b', 2), rec('c', 32), rec('d', 64, 'HOST_STATE_DOWN')];
  active = 'a';
  ipReady = new Set(['b', 'c', 'd']);
  vmReady = new Set(['b', 'c', 'd']);
  qemu = false;
  ipTriggers: string[] = [];
  vmTriggers: string[] = [];
  release?: () => void;
  ip = {
    activeHost: (vmId: string) => {
      if (vmId !== 'g1') throw new NotFoundError('VM', vmId);
      return this.active;
    },
    notCurrentReason: (_vm: string, h: string) => (this.ipReady.has(h) ? undefined : 'no shadow there'),
    trigger: async (vmId: string, dest: string) => {
      this.ipTriggers.push(dest);
      return event(vmId, this.active, dest);
    },
    list: async () => [],
  } as unknown as IpSwitchover;
  vm: VmSwitchoverRoute = {
    handles: async () => this.qemu,
    notReadyReason: async (_vm, h) => (this.vmReady.has(h) ? undefined : `cannot switch vm 'g1' to '${h}': no shadow VM there (not prepared)`),
    trigger: async (vmId, dest, progress) => {
      this.vmTriggers.push(dest);
      progress?.({ step: 'pause-source', hostId: this.active });
      if (this.release) await new Promise<void>((r) => (this.release = r));
      progress?.({ step: 'pause-source', hostId: this.active, ok: true, durationMs: 1 });
      return event(vmId, this.active, dest);
    },
    list: async () => [],
  };
  routes(withRanker = true): MigrationRoutes {
    const r = new MigrationRoutes(this.ip);
    r.installVmRoute(this.vm);
    const ranker = new CapacityHeadroomRanker();
    if (withRanker) {
      r.installRanker({
        hostIds: () => this.hosts.map((h) => h.facts.host_id),
        rank: (vmId, source) =>
          ranker.rank(vmViewOf(vmId, this.hosts.find((h) => h.facts.host_id === source), source), this.hosts.map((h) => hostViewOf(h, false)), { explainRejected: true }),
      });
    }
    return r;
  }
}

test('best: the top-ranked host among those with a ready shadow', async (t) => {
  const w = new World();
  const run = await w.routes().run('g1', '');
  t.is(run.destination.hostId, 'c', 'c has the most headroom; d is down');
  t.true(run.destination.chosenByRank);
  t.true(run.destination.score > 0);
  t.true(run.destination.reasons.length > 0);
  t.deepEqual(w.ipTriggers, ['c']);
});

test('best: a better-ranked host without a ready shadow is passed over', async (t) => {
  const w = new World();
  w.ipReady.delete('c');
  const run = await w.routes().run('g1', '');
  t.is(run.destination.hostId, 'b');
  t.deepEqual(w.ipTriggers, ['b']);
});

test('best: QEMU VMs are judged by the VM switchover readiness and take the VM route with progress', async (t) => {
  const w = new World();
  w.qemu = true;
  w.vmReady = new Set(['b']);
  const seen: MigrationProgress[] = [];
  const run = await w.routes().run('g1', '', { progress: (p) => seen.push(p) });
  t.is(run.destination.hostId, 'b');
  t.deepEqual(w.vmTriggers, ['b']);
  t.deepEqual(w.ipTriggers, []);
  t.deepEqual(seen.map((p) => `${p.step}:${p.ok ?? 'start'}`), ['pause-source:start', 'pause-source:true']);
});

test('best: FAILED_PRECONDITION naming every host when no shadow is ready', async (t) => {
  const w = new World();
  w.ipReady.clear();
  const err = await t.throwsAsync(w.routes().run('g1', ''), { instanceOf: FailedPreconditionError });
  t.regex(err!.message, /no host holds a ready shadow of vm 'g1'/);
  t.regex(err!.message, /b: no shadow there; c: no shadow there; d: no shadow there/);
  t.deepEqual(w.ipTriggers, []);
});

test('best: FAILED_PRECONDITION with the ranker reasons when it rejects every ready host', async (t) => {
  const w = new World();
  w.ipReady = new Set(['d']);
  const err = await t.throwsAsync(w.routes().run('g1', ''), { instanceOf: FailedPreconditionError });
  t.regex(err!.message, /passes the ranker \(d: HOST_DOWN/);
});

test('best: without a ranker the caller is told to name the destination; a named one still works', async (t) => {
  const w = new World();
  const routes = w.routes(false);
  await t.throwsAsync(routes.run('g1', ''), { instanceOf: FailedPreconditionError, message: /no destination ranker/ });
  const run = await routes.run('g1', 'b');
  t.false(run.destination.chosenByRank);
  t.deepEqual(w.ipTriggers, ['b']);
});

test('unknown VM: NOT_FOUND', async (t) => {
  await t.throwsAsync(new World().routes().run('nope', ''), { instanceOf: NotFoundError });
});

test('orBest: the recommended host when ready, else the best one with the reason it was set aside', async (t) => {
  const w = new World();
  const routes = w.routes();
  t.is((await routes.run('g1', 'b', { orBest: true })).destination.hostId, 'b');
  w.ipReady.delete('b');
  const run = await routes.run('g1', 'b', { orBest: true });
  t.is(run.destination.hostId, 'c');
  t.regex(run.destination.reasons[0], /^b set aside: no shadow there/);
  t.deepEqual(w.ipTriggers, ['b', 'c']);
});

test('one switchover per VM at a time: a second one is refused while the first runs', async (t) => {
  const w = new World();
  w.qemu = true;
  w.release = () => undefined;
  const routes = w.routes();
  const first = routes.run('g1', 'b');
  await new Promise((r) => setImmediate(r));
  t.true(routes.isRunning('g1'));
  await t.throwsAsync(routes.run('g1', 'c'), { instanceOf: FailedPreconditionError, message: /already running/ });
  w.release!();
  t.is((await first).event.status, 'SUCCEEDED');
  t.false(routes.isRunning('g1'));
  t.deepEqual(w.vmTriggers, ['b']);
});

test('chooseBestDestination: a readiness check that throws counts as not ready, with its error', async (t) => {
  const err = await t.throwsAsync(
    chooseBestDestination({
      vmId: 'g1',
      sourceHost: 'a',
      hostIds: ['a', 'b'],
      notReadyReason: async () => {
        throw new Error('agent unreachable');
      },
      rank: () => {
        throw new Error('must not rank without a ready host');
      },
    }),
    { instanceOf: FailedPreconditionError },
  );
  t.regex(err!.message, /b: readiness unknown: agent unreachable/);
});

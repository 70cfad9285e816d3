// The coordinator's MemoryShadowManager over a fake agent port and host table: endpoints from the
// registry, persistence across a restart, moving the source, flush recording, status errors per
// VM, stop with an unreachable source, and resync after an agent lost its replication.
import test from 'ava';
import { NotFoundError, UnavailableError, isUmbraError } from '../../../shared/errors';
import { silentLogger } from '../../../shared/log';
import type { AgentSourceStatus, MemoryAgentPort, ShadowTargetEndpoint } from '../../../coordinator/memory/memory-agent-port';
import { MemoryShadowManager } from '../../../coordinator/memory/memory-shadow-manager';
import { MemoryKvStore } from '../../fakes/memory-kv-store';

const ENDPOINTS: Record<string, string> = { 'hv-a': '10.0.0.1:7701', 'hv-b': '10.0.0.2:7701', 'hv-c': '10.0.0.3:7701' };

class FakeAgents implements MemoryAgentPort {
  /** host -> vm -> shadows it replicates to */
  readonly running = new Map<string, Map<string, ShadowTargetEndpoint[]>>();
  readonly calls: string[] = [];
  down = new Set<string>();
  epoch = 0;

  private host(h: string) {
    if (this.down.has(h)) throw new UnavailableError(`${h} unreachable`);
    if (!this.running.has(h)) this.running.set(h, new Map());
    return this.running.get(h)!;
  }
  private statusOf(vmId: string, shadows: ShadowTargetEndpoint[]): AgentSourceStatus {
    return {
      vm_id: vmId, generation: 'g', tracker: 'uffd-wp', tracker_attempts: [], epoch: String(this.epoch), running: true,
      dirty_rate_bytes_per_s: 0, round_interval_ms: 50, memory_bytes: '4096', last_scan_ms: 0, last_dirty_pages: 0,
      shadows: shadows.map((s) => ({ host_id: s.host_id, endpoint: s.endpoint, state: 'streaming', acked_epoch: '0', lag_bytes: '0', frames_sent: '0', bytes_sent: '0', reconnects: 0, full_resends: 0, last_error: '' })),
    };
  }
  async start(h: string, vmId: string, shadows: ShadowTargetEndpoint[]) {
    this.calls.push(`start ${h} ${vmId} ${shadows.map((s) => `${s.host_id}=${s.endpoint}`).join(',')}`);
    this.host(h).set(vmId, shadows);
    return this.statusOf(vmId, shadows);
  }
  async stop(h: string, vmId: string) {
    this.calls.push(`stop ${h} ${vmId}`);
    return this.host(h).delete(vmId);
  }
  async flush(h: string, vmId: string) {
    if (!this.host(h).has(vmId)) throw new NotFoundError('replication of vm', vmId);
    return { finalEpoch: ++this.epoch, flushMs: 3 };
  }
  async resume(h: string) {
    this.host(h);
  }
  async resyncShadow(h: string, vmId: string, hostId: string, reason: string) {
    this.calls.push(`resync ${h} ${vmId} ${hostId} (${reason})`);
    const shadows = this.host(h).get(vmId);
    if (!shadows) throw new NotFoundError('replication of vm', vmId);
    if (!shadows.some((s) => s.host_id === hostId)) throw new NotFoundError('shadow', hostId);
    return this.statusOf(vmId, shadows);
  }
  async status(h: string, vmId: string) {
    const s = this.host(h).get(vmId);
    return s ? this.statusOf(vmId, s) : undefined;
  }
}

async function setup(store = new MemoryKvStore(), agents = new FakeAgents()) {
  const hosts = {
    endpointOf: (h: string) => {
      if (!ENDPOINTS[h]) throw new NotFoundError('host', h);
      return ENDPOINTS[h];
    },
  };
  const m = await MemoryShadowManager.open({ store, hosts, agents, logger: silentLogger(), clock: () => 1000 });
  return { m, agents, store };
}

test('start resolves shadow endpoints from the host registry and persists the record', async (t) => {
  const { m, agents, store } = await setup();
  const v = await m.start('vm-1', 'hv-a', ['hv-b', 'hv-c']);
  t.deepEqual(agents.calls, ['start hv-a vm-1 hv-b=10.0.0.2:7701,hv-c=10.0.0.3:7701']);
  t.is(v.status?.tracker, 'uffd-wp');
  const reopened = await MemoryShadowManager.open({ store, hosts: { endpointOf: (h) => ENDPOINTS[h] }, agents, logger: silentLogger() });
  t.deepEqual(reopened.get('vm-1')?.shadow_hosts, ['hv-b', 'hv-c']);
  t.is(reopened.get('vm-1')?.started_at_unix_ms, 1000);
});

test('naming another source stops the old one first; flush records the final epoch', async (t) => {
  const { m, agents } = await setup();
  await m.start('vm-1', 'hv-a', ['hv-b']);
  await m.start('vm-1', 'hv-c', ['hv-b']);
  t.deepEqual(agents.calls.slice(1), ['stop hv-a vm-1', 'start hv-c vm-1 hv-b=10.0.0.2:7701']);
  const r = await m.flush('vm-1', 1000);
  t.is(r.finalEpoch, 1);
  t.deepEqual(r.shadowHosts, ['hv-b']);
  t.is(m.get('vm-1')?.last_final_epoch, 1);
});

test("a flush the source ran itself (a switchover's switch-out) is noted on the record, durably; a record of another source is left alone", async (t) => {
  const { m, agents, store } = await setup();
  await m.start('vm-1', 'hv-a', ['hv-b']);
  await m.noteFlushed('vm-1', 'hv-a', 42);
  t.is(m.get('vm-1')?.last_final_epoch, 42);
  await m.noteFlushed('vm-1', 'hv-c', 50);
  await m.noteFlushed('vm-unknown', 'hv-a', 50);
  const reopened = await MemoryShadowManager.open({ store, hosts: { endpointOf: (h) => ENDPOINTS[h] }, agents, logger: silentLogger() });
  t.is(reopened.get('vm-1')?.last_final_epoch, 42);
  t.deepEqual(agents.calls, ['start hv-a vm-1 hv-b=10.0.0.2:7701'], 'no agent is asked anything');
});

test("an operator's stop is remembered across a restart until an operator starts it again; the coordinator's own stop and start leave no mark", async (t) => {
  const { m, agents, store } = await setup();
  await m.start('vm-1', 'hv-a', ['hv-b'], { auto: true });
  t.true(m.get('vm-1')?.auto);
  await m.stop('vm-1');
  t.deepEqual([...m.stoppedByOperator()], [], 'a stop by the coordinator (e.g. after a switchover)');
  await m.start('vm-1', 'hv-a', ['hv-b'], { auto: true });
  await m.stop('vm-1', { byOperator: true });
  const reopened = await MemoryShadowManager.open({ store, hosts: { endpointOf: (h) => ENDPOINTS[h] }, agents, logger: silentLogger() });
  t.deepEqual([...reopened.stoppedByOperator()], ['vm-1']);
  await reopened.start('vm-1', 'hv-a', ['hv-b'], { auto: true });
  t.deepEqual([...reopened.stoppedByOperator()], ['vm-1'], "the coordinator's start does not lift it");
  await reopened.start('vm-1', 'hv-a', ['hv-b']);
  t.falsy(reopened.get('vm-1')?.auto, "an operator's start makes the replication the operator's");
  t.deepEqual([...reopened.stoppedByOperator()], []);
  const again = await MemoryShadowManager.open({ store, hosts: { endpointOf: (h) => ENDPOINTS[h] }, agents, logger: silentLogger() });
  t.deepEqual([...again.stoppedByOperator()], []);
});

test('bad requests and unknown names are refused before any agent call', async (t) => {
  const { m, agents } = await setup();
  const reason = async (p: Promise<unknown>) => {
    const e = await t.throwsAsync(p);
    return isUmbraError(e) ? `${e.reason} ${e.message}` : String(e);
  };
  t.regex(await reason(m.start('vm-1', 'hv-a', [])), /^INVALID_ARGUMENT shadow_hosts:/);
  t.regex(await reason(m.start('vm-1', 'hv-a', ['hv-a'])), /^INVALID_ARGUMENT shadow_hosts\[0\]: .*source/);
  t.regex(await reason(m.start('vm-1', 'hv-a', ['hv-b', 'hv-b'])), /^INVALID_ARGUMENT shadow_hosts\[1\]: duplicate/);
  t.regex(await reason(m.start('vm-1', 'hv-z', ['hv-b'])), /^NOT_FOUND host 'hv-z'/);
  t.regex(await reason(m.start('vm-1', 'hv-a', ['hv-y'])), /^NOT_FOUND host 'hv-y'/);
  t.regex(await reason(m.flush('vm-9')), /^NOT_FOUND memory shadow of vm 'vm-9'/);
  t.deepEqual(agents.calls, []);
});

test('list reports an unreachable source per VM; stop forgets a VM whose source is down', async (t) => {
  const { m, agents } = await setup();
  await m.start('vm-1', 'hv-a', ['hv-b']);
  await m.start('vm-2', 'hv-c', ['hv-b']);
  agents.down.add('hv-a');
  const list = await m.list();
  t.deepEqual(list.map((v) => [v.record.vm_id, !!v.status]), [['vm-1', false], ['vm-2', true]]);
  t.regex(list[0].statusError, /^hv-a: hv-a unreachable/);
  await m.stop('vm-1');
  t.is(m.get('vm-1'), undefined);
  t.deepEqual((await m.list()).map((v) => v.record.vm_id), ['vm-2']);
});

test('resync restarts replication a source agent lost (restart), and nothing else', async (t) => {
  const { m, agents } = await setup();
  await m.start('vm-1', 'hv-a', ['hv-b', 'hv-c']);
  await m.start('vm-2', 'hv-c', ['hv-b']);
  t.deepEqual(await m.resync(), []);
  agents.running.get('hv-a')!.clear(); // hv-a restarted: it keeps no sources
  t.deepEqual(await m.resync(), ['vm-1']);
  t.deepEqual(agents.calls.at(-1), 'start hv-a vm-1 hv-b=10.0.0.2:7701,hv-c=10.0.0.3:7701');
  t.truthy(await agents.status('hv-a', 'vm-1'));
});

test('switchover readiness: shadowed there, source reachable, streaming, a complete copy, lag under the bound', async (t) => {
  const { m, agents } = await setup();
  t.regex((await m.notReadyReason('vm-1', 'hv-a', 'hv-b'))!, /not replicated/);
  await m.start('vm-1', 'hv-a', ['hv-b']);
  t.regex((await m.notReadyReason('vm-1', 'hv-c', 'hv-b'))!, /replicates from hv-a, not hv-c/);
  t.regex((await m.notReadyReason('vm-1', 'hv-a', 'hv-c'))!, /hv-c holds no memory shadow/);
  t.regex((await m.notReadyReason('vm-1', 'hv-a', 'hv-b'))!, /no complete copy yet/);
  const base = agents.status.bind(agents);
  let link = { acked_epoch: '4', lag_bytes: String(100 << 20), state: 'streaming' };
  agents.status = async (h, vm) => {
    const s = await base(h, vm);
    return s && { ...s, shadows: s.shadows.map((l) => ({ ...l, ...link })) };
  };
  t.regex((await m.notReadyReason('vm-1', 'hv-a', 'hv-b'))!, /lags 104857600 bytes/);
  link = { acked_epoch: '4', lag_bytes: '4096', state: 'backoff' };
  t.regex((await m.notReadyReason('vm-1', 'hv-a', 'hv-b'))!, /is backoff/);
  link = { acked_epoch: '4', lag_bytes: '4096', state: 'streaming' };
  t.is(await m.notReadyReason('vm-1', 'hv-a', 'hv-b'), undefined);
  agents.down.add('hv-a');
  t.regex((await m.notReadyReason('vm-1', 'hv-a', 'hv-b'))!, /source hv-a: .*unreachable/);
});

test('start, flush and stop are written to the audit log', async (t) => {
  const events: string[] = [];
  const store = new MemoryKvStore();
  const agents = new FakeAgents();
  const m = await MemoryShadowManager.open({
    store,
    hosts: { endpointOf: (h) => ENDPOINTS[h] },
    agents,
    events: { append: async (e) => void events.push(`${e.kind} ${e.host_id} ${e.vm_id} ${JSON.stringify(e.attributes)}`) },
    logger: silentLogger(),
  });
  await m.start('vm-1', 'hv-a', ['hv-b', 'hv-c']);
  await m.flush('vm-1', 1000);
  await m.stop('vm-1');
  t.deepEqual(events, [
    'EVENT_KIND_MEMORY_SHADOW_STARTED hv-a vm-1 {"shadows":"hv-b,hv-c","tracker":"uffd-wp"}',
    'EVENT_KIND_MEMORY_SHADOW_FLUSHED hv-a vm-1 {"final_epoch":"1","flush_ms":"3.00","shadows":"hv-b,hv-c"}',
    'EVENT_KIND_MEMORY_SHADOW_STOPPED hv-a vm-1 {}',
  ]);
});

test('resyncShadow asks the source to re-send one shadow in full; while the source is unreachable it stays pending (not ready) and resync() retries it', async (t) => {
  const store = new MemoryKvStore();
  const { m, agents } = await setup(store);
  await m.start('vm-1', 'hv-a', ['hv-b', 'hv-c']);
  await t.throwsAsync(m.resyncShadow('vm-1', 'hv-a', 'x'), { instanceOf: NotFoundError }, 'the source is no shadow');
  await t.throwsAsync(m.resyncShadow('vm-2', 'hv-b', 'x'), { instanceOf: NotFoundError });
  await m.resyncShadow('vm-1', 'hv-b', 'guest ran there');
  t.is(agents.calls.at(-1), 'resync hv-a vm-1 hv-b (guest ran there)');
  t.is(m.get('vm-1')!.resync_pending, undefined, 'accepted by the source: nothing pending');

  agents.down.add('hv-a');
  const err = await t.throwsAsync(m.resyncShadow('vm-1', 'hv-c', 'guest ran there'));
  t.true(isUmbraError(err) && err.reason === 'UNAVAILABLE');
  t.deepEqual(m.get('vm-1')!.resync_pending, ['hv-c']);
  agents.down.delete('hv-a');
  // Link state alone would call hv-c ready: the pending re-sync keeps it out of switchovers.
  const base = agents.status.bind(agents);
  agents.status = async (h, vm) => {
    const s = await base(h, vm);
    return s && { ...s, shadows: s.shadows.map((l) => ({ ...l, acked_epoch: '9', lag_bytes: '0' })) };
  };
  t.regex((await m.notReadyReason('vm-1', 'hv-a', 'hv-c'))!, /declared invalid/);
  t.is(await m.notReadyReason('vm-1', 'hv-a', 'hv-b'), undefined, 'the other shadow is unaffected');
  // Persisted: a restarted coordinator still knows.
  const again = await MemoryShadowManager.open({ store, hosts: { endpointOf: (h) => ENDPOINTS[h] }, agents, logger: silentLogger() });
  t.deepEqual(again.get('vm-1')!.resync_pending, ['hv-c']);
  t.deepEqual(await again.resync(), ['vm-1']);
  t.is(agents.calls.at(-1), 'resync hv-a vm-1 hv-c (declared invalid earlier; re-sync retried)');
  t.is(again.get('vm-1')!.resync_pending, undefined);
  t.is(await again.notReadyReason('vm-1', 'hv-a', 'hv-c'), undefined);
});

test('a pending re-sync is settled by a restarted source (its new session copies every shadow in full)', async (t) => {
  const { m, agents } = await setup();
  await m.start('vm-1', 'hv-a', ['hv-b']);
  agents.down.add('hv-a');
  await t.throwsAsync(m.resyncShadow('vm-1', 'hv-b', 'guest ran there'));
  agents.down.delete('hv-a');
  agents.running.get('hv-a')!.clear(); // hv-a restarted
  t.deepEqual(await m.resync(), ['vm-1']);
  t.is(agents.calls.at(-1), 'start hv-a vm-1 hv-b=10.0.0.2:7701');
  t.is(m.get('vm-1')!.resync_pending, undefined);
});

// IpSwitchover with fake agents: precondition, fencing tokens that only grow (across restarts),
// rollback on a failed activation or deactivation so exactly one host holds the address, audit.
import test from 'ava';
import { silentLogger } from '../../../shared/log';
import { KeyedMutex } from '../../../shared/keyed-mutex';
import { MemoryKvStore } from '../../fakes/memory-kv-store';
import { BuiltinLeaseBackend } from '../../../coordinator/leases/builtin-lease-backend';
import { FencingCounter } from '../../../coordinator/migrate/fencing-counter';
import { IpReconciler } from '../../../coordinator/migrate/ip-reconciler';
import { IpSwitchover } from '../../../coordinator/migrate/ip-switchover';
import { VmIpRegistry } from '../../../coordinator/shadow/vm-ip-registry';
import type { HandoverOutcome, IpHandoffHosts } from '../../../coordinator/migrate/ip-agent-port';
import type { VmIpConfig } from '../../../shared/vm-ip-config';
import { EventSink, FakeAgents, host, vmConfig } from './fixtures';

async function setup() {
  const store = new MemoryKvStore();
  const vms = await VmIpRegistry.open(store);
  await vms.report('a', vmConfig());
  const agents = new FakeAgents();
  await agents.activate('a', vmConfig(), 0);
  const events = new EventSink();
  const current = new Map([['b', 1], ['c', 0]]);
  const shadows = {
    notCurrentReason: (vmId: string, h: string) => (current.has(h) ? (current.get(h)! >= vms.get(vmId).version ? undefined : `behind on ${h}`) : `no shadow on ${h}`),
    promoted: async (_vm: string, h: string) => void current.delete(h),
    list: () => [...current.keys()].map((host_id) => ({ vm_id: 'vm1', host_id })),
  };
  const leases = new BuiltinLeaseBackend(store);
  const locks = new KeyedMutex();
  const mk = () => new IpSwitchover({ store, vms, shadows, agents, leases, fencing: new FencingCounter(store), events, logger: silentLogger(), locks });
  const reconciler = new IpReconciler({
    vms, hosts: { list: () => [host('a'), host('b'), host('c')] }, shadowHosts: () => [...current.keys()], agents, leases, fencing: new FencingCounter(store), events, locks, logger: silentLogger(),
  });
  return { store, vms, agents, events, leases, mk, reconciler };
}

test('a destination without a current shadow is refused before anything changes', async (t) => {
  const { agents, mk } = await setup();
  const sw = mk();
  await t.throwsAsync(() => sw.trigger('vm1', 'c'), { message: /cannot switch vm 'vm1' to 'c': behind on c/ });
  await t.throwsAsync(() => sw.trigger('vm1', 'd'), { message: /no shadow on d/ });
  await t.throwsAsync(() => sw.trigger('vm1', 'a'), { message: /already active on 'a'/ });
  t.deepEqual(agents.holders('vm1'), ['a']);
  t.deepEqual(agents.calls.filter((c) => !c.startsWith('activate@a')), []);
});

test('the address goes back to the host it just left without a shadow there (a rolled-back VM switchover); other switches still need one', async (t) => {
  const { agents, mk, vms } = await setup();
  const sw = mk();
  t.is((await sw.trigger('vm1', 'b')).status, 'SUCCEEDED');
  await t.throwsAsync(() => sw.trigger('vm1', 'a'), { message: /no shadow on a/ });
  const back = await sw.trigger('vm1', 'a', { returning: true });
  t.is(back.status, 'SUCCEEDED', back.error);
  t.deepEqual(agents.holders('vm1'), ['a']);
  t.is(vms.get('vm1').active_host, 'a');
});

test('a switchover moves the address, the lease and the active host, with step timings in the audit log', async (t) => {
  const { vms, agents, events, leases, mk } = await setup();
  const ev = await mk().trigger('vm1', 'b');
  t.is(ev.status, 'SUCCEEDED');
  t.deepEqual(ev.steps.map((s) => `${s.step}@${s.host_id}`).sort(), ['activate@b', 'commit@coordinator', 'deactivate@a', 'lease@builtin', 'prepare@a', 'prepare@b']);
  t.deepEqual(ev.steps.slice(2).map((s) => s.step), ['deactivate', 'activate', 'commit', 'lease']);
  t.deepEqual(agents.holders('vm1'), ['b']);
  t.is(vms.get('vm1').active_host, 'b');
  t.is((await leases.get(vmConfig()))!.active_host, 'b');
  const audit = events.events.find((e) => e.kind === 'EVENT_KIND_SWITCHOVER')!;
  t.is(audit.attributes!.status, 'SUCCEEDED');
  t.regex(audit.attributes!.steps, /deactivate@a=\d+\.\d\dms ok, activate@b=/);
  t.false('part_of' in audit.attributes!, 'a switchover of its own');
});

test('an IP switch run as a step of a VM switchover says so in its audit entry, prepared ahead or not', async (t) => {
  const { events, mk } = await setup();
  const sw = mk();
  await (await sw.prepare('vm1', 'b', undefined, { partOfVmSwitchover: true })).complete();
  await sw.trigger('vm1', 'a', { returning: true, partOfVmSwitchover: true });
  const audits = events.events.filter((e) => e.kind === 'EVENT_KIND_SWITCHOVER');
  t.deepEqual(audits.map((e) => [e.attributes!.destination_host, e.attributes!.part_of]), [
    ['b', 'vm_switchover'],
    ['a', 'vm_switchover'],
  ]);
});

test('placements: each VM with its active host and its shadow hosts', async (t) => {
  const { mk } = await setup();
  t.deepEqual(mk().placements(), [{ vmId: 'vm1', activeHost: 'a', shadowHosts: ['b', 'c'] }]);
  t.deepEqual(mk().placementOf('vm1'), { vmId: 'vm1', activeHost: 'a', shadowHosts: ['b', 'c'] });
  t.is(mk().placementOf('vm-unknown'), undefined);
});

test('tokens grow across switchovers and coordinator restarts', async (t) => {
  const { mk, vms } = await setup();
  const first = await mk().trigger('vm1', 'b');
  await vms.report('b', vmConfig());
  const sw2 = mk();
  (sw2 as unknown as { d: { shadows: { notCurrentReason: () => undefined } } }).d.shadows.notCurrentReason = () => undefined;
  const second = await sw2.trigger('vm1', 'a');
  t.true(second.fencing_token > first.fencing_token);
});

test('a failed activation on the destination rolls back to the source', async (t) => {
  const { vms, agents, events, mk } = await setup();
  agents.failOnce.add('activate@b');
  const ev = await mk().trigger('vm1', 'b');
  t.is(ev.status, 'ROLLED_BACK');
  t.regex(ev.error, /activate failed on b/);
  t.deepEqual(ev.steps.map((s) => `${s.step}:${s.ok}`), ['prepare:true', 'prepare:true', 'deactivate:true', 'activate:false', 'rollback-deactivate:true', 'rollback-activate:true']);
  t.deepEqual(agents.holders('vm1'), ['a']);
  t.is(vms.get('vm1').active_host, 'a');
  t.is(events.events.at(-1)!.attributes!.status, 'ROLLED_BACK');
});

test('a failed deactivation on the source leaves the address there', async (t) => {
  const { agents, mk } = await setup();
  agents.failOnce.add('deactivate@a');
  const ev = await mk().trigger('vm1', 'b');
  t.is(ev.status, 'ROLLED_BACK');
  t.deepEqual(agents.holders('vm1'), ['a']);
  t.false(agents.calls.includes('activate@b'));
});

test('when the rollback fails too, the result is FAILED and an alert is audited', async (t) => {
  const { agents, events, mk } = await setup();
  agents.failOnce.add('activate@b');
  agents.failOnce.add('activate@a');
  const ev = await mk().trigger('vm1', 'b');
  t.is(ev.status, 'FAILED');
  t.is(events.events.at(-1)!.kind, 'EVENT_KIND_ALERT');
});

test('a lease backend failure after the move keeps the move and the sweep fixes the record', async (t) => {
  const { store, agents, leases, mk, reconciler, events } = await setup();
  store.failNextWrite = undefined;
  const orig = leases.record.bind(leases);
  let fail = true;
  leases.record = async (...a) => {
    if (fail) {
      fail = false;
      throw new Error('lease db down');
    }
    return orig(...a);
  };
  const ev = await mk().trigger('vm1', 'b');
  t.is(ev.status, 'SUCCEEDED');
  t.regex(ev.error, /lease record not updated: lease db down/);
  t.deepEqual(agents.holders('vm1'), ['b']);
  const out = await reconciler.sweep();
  t.is(out.fixed, 1);
  t.is((await leases.get(vmConfig()))!.active_host, 'b');
  t.true(events.events.some((e) => e.kind === 'EVENT_KIND_RECONCILED' && /lease record/.test(e.message)));
});

test('the sweep deactivates a second holder, activates where nobody holds it (above any token seen), and alerts on the rest', async (t) => {
  const { agents, reconciler, events, leases } = await setup();
  await leases.record(vmConfig(), 'a', []);
  await agents.activate('c', vmConfig(), 0);
  let out = await reconciler.sweep();
  t.is(out.fixed, 1);
  t.deepEqual(agents.holders('vm1'), ['a']);
  await agents.deactivate('a', vmConfig(), 99);
  out = await reconciler.sweep();
  t.is(out.fixed, 1, 'active nowhere: activated on the recorded host');
  t.deepEqual(agents.holders('vm1'), ['a']);
  t.true(agents.tokens.get('a/vm1')! > 99, 'the counter was raised past the token the agent had seen');
  await agents.deactivate('a', vmConfig(), 1000);
  await agents.activate('b', vmConfig(), 1000);
  out = await reconciler.sweep();
  t.is(out.alerts, 1);
  t.deepEqual(agents.holders('vm1'), ['b'], 'a holder that is not the recorded host is left for an operator');
  t.true(events.events.some((e) => e.kind === 'EVENT_KIND_RECONCILED' && /also active on c/.test(e.message)));
  t.true(events.events.some((e) => e.kind === 'EVENT_KIND_ALERT' && /left for an operator/.test(e.message)));
});

test('both agents admit the token before the address moves; the journal and the token are one write', async (t) => {
  const { store, agents, mk } = await setup();
  const writes: string[][] = [];
  const batch = store.batch.bind(store);
  store.batch = async (ops) => {
    writes.push(ops.map((o) => `${o.type} ${o.key}`));
    return batch(ops);
  };
  const before = agents.calls.length;
  const ev = await mk().trigger('vm1', 'b');
  t.is(ev.status, 'SUCCEEDED');
  const order = agents.calls.slice(before).filter((c) => /^(prepare|deactivate|activate)@/.test(c));
  // Both prepares at once, the destination's asked first (the source's rehearsal needs it to expect the hand-over).
  t.deepEqual(order.slice(0, 2), ['prepare@b', 'prepare@a']);
  t.deepEqual(order.slice(2), ['deactivate@a', 'activate@b']);
  t.is(agents.tokens.get('b/vm1'), ev.fencing_token, 'the destination held the token before its activation');
  t.deepEqual(writes[0], ['put ipshadow/fencing/last', 'put ipshadow/journal/vm1']);
  t.deepEqual(writes.at(-1)![0], 'del ipshadow/journal/vm1');
  t.is(await store.get('ipshadow/journal/vm1'), undefined);
});

test('a destination that cannot prepare leaves the address on the source untouched', async (t) => {
  const { vms, agents, mk, events } = await setup();
  agents.failOnce.add('prepare@b');
  const ev = await mk().trigger('vm1', 'b');
  t.is(ev.status, 'ROLLED_BACK');
  t.regex(ev.error, /b not prepared: prepare failed on b/);
  t.false(agents.calls.includes('deactivate@a'));
  t.false(agents.calls.includes('activate@b'));
  t.deepEqual(agents.holders('vm1'), ['a']);
  t.is(vms.get('vm1').active_host, 'a');
  t.is(events.events.at(-1)!.attributes!.status, 'ROLLED_BACK');
});

test('agents without PrepareIp, or a source that fails it, still switch (the calls admit the token themselves)', async (t) => {
  const { agents, mk, vms } = await setup();
  agents.withoutPrepare.add('a');
  agents.withoutPrepare.add('b');
  const ev = await mk().trigger('vm1', 'b');
  t.is(ev.status, 'SUCCEEDED');
  t.deepEqual(ev.steps.filter((s) => s.step === 'prepare').map((s) => s.ok), [false, false]);
  t.deepEqual(agents.holders('vm1'), ['b']);

  await vms.report('b', vmConfig());
  agents.withoutPrepare.clear();
  agents.failOnce.add('prepare@b');
  const sw2 = mk();
  (sw2 as unknown as { d: { shadows: { notCurrentReason: () => undefined } } }).d.shadows.notCurrentReason = () => undefined;
  const back = await sw2.trigger('vm1', 'a');
  t.is(back.status, 'SUCCEEDED', 'the source (b) failed to prepare; a prepared');
  t.deepEqual(agents.holders('vm1'), ['a']);
});

/** Agents that hand over: the source activates the destination itself right after its removal. */
class HandOverAgents extends FakeAgents {
  readonly handoffs = new Map<string, IpHandoffHosts>();
  /** The hosts each deactivateAndHandOver was called with. */
  readonly handedOver: IpHandoffHosts[] = [];
  failAfterHandOver = false;
  override async prepare(hostId: string, config: VmIpConfig, token: number, handoff?: IpHandoffHosts): Promise<number> {
    const r = await super.prepare(hostId, config, token);
    if (handoff) this.handoffs.set(`${hostId}/${config.vm_id}`, handoff);
    return r;
  }
  async deactivateAndHandOver(hosts: IpHandoffHosts, config: VmIpConfig, token: number): Promise<HandoverOutcome> {
    this.handedOver.push(hosts);
    await this.deactivate(hosts.source, config, token);
    const prepared = [hosts.source, hosts.destination].every((h) => this.handoffs.get(`${h}/${config.vm_id}`)?.destination === hosts.destination);
    let outcome: HandoverOutcome;
    try {
      if (!prepared) throw new Error('not prepared for this hand-over');
      await this.activate(hosts.destination, config, token);
      outcome = { sourceMs: 1, handedOver: true, destinationMs: 2 };
    } catch (err) {
      outcome = { sourceMs: 1, handedOver: false, error: (err as Error).message };
    }
    if (this.failAfterHandOver) throw new Error('source answer lost');
    return outcome;
  }
}

async function handOverSetup() {
  const s = await setup();
  const agents = new HandOverAgents();
  await agents.activate('a', vmConfig(), 0);
  (s as { agents: FakeAgents }).agents = agents;
  const mk = () => {
    const sw = s.mk();
    (sw as unknown as { d: { agents: FakeAgents } }).d.agents = agents;
    return sw;
  };
  return { ...s, agents, mk };
}

test('with hand-over: the source activates the destination right after its removal, the coordinator only records it', async (t) => {
  const { agents, mk, vms } = await handOverSetup();
  const before = agents.calls.length;
  const ev = await mk().trigger('vm1', 'b');
  t.is(ev.status, 'SUCCEEDED');
  t.deepEqual(ev.steps.slice(2).map((s) => `${s.step}@${s.host_id}:${s.ok}`), ['deactivate@a:true', 'handover@b:true', 'commit@coordinator:true', 'lease@builtin:true']);
  t.deepEqual(agents.calls.slice(before).filter((c) => !c.startsWith('prepare')), ['deactivate@a', 'activate@b']);
  const prepared = agents.handoffs.get('b/vm1')!;
  t.like(prepared, { source: 'a', destination: 'b' });
  // One datagram key per switchover, the same for both agents' prepare and the source's hand-over.
  t.is(prepared.datagramKey?.length, 32);
  t.deepEqual(agents.handoffs.get('a/vm1'), prepared);
  t.deepEqual(agents.handedOver[0], prepared);
  t.deepEqual(agents.holders('vm1'), ['b']);
  t.is(vms.get('vm1').active_host, 'b');
  const other = await handOverSetup();
  t.is((await other.mk().trigger('vm1', 'b')).status, 'SUCCEEDED');
  t.notDeepEqual(other.agents.handoffs.get('b/vm1')!.datagramKey, prepared.datagramKey, 'another switchover, another key');
});

test('with hand-over: a refused hand-over falls back to the coordinator activating the destination', async (t) => {
  const { agents, mk } = await handOverSetup();
  agents.failOnce.add('activate@b');
  const ev = await mk().trigger('vm1', 'b');
  t.is(ev.status, 'SUCCEEDED');
  t.deepEqual(ev.steps.slice(2).map((s) => `${s.step}:${s.ok}`), ['deactivate:true', 'handover:false', 'activate:true', 'commit:true', 'lease:true']);
  t.regex(ev.steps.find((s) => s.step === 'handover')!.error, /activate failed on b/);
  t.deepEqual(agents.holders('vm1'), ['b']);
});

test('with hand-over: a source call that fails after the hand-over takes the address back from the destination first', async (t) => {
  const { agents, mk, vms } = await handOverSetup();
  agents.failAfterHandOver = true;
  const ev = await mk().trigger('vm1', 'b');
  t.is(ev.status, 'ROLLED_BACK');
  t.deepEqual(ev.steps.slice(2).map((s) => `${s.step}@${s.host_id}:${s.ok}`), ['deactivate@a:false', 'rollback-deactivate@b:true', 'rollback-activate@a:true']);
  t.deepEqual(agents.holders('vm1'), ['a']);
  t.is(vms.get('vm1').active_host, 'a');
});

test('prepared ahead: the agents admit the token at prepare, the address moves only at complete(), and the VM stays locked until then', async (t) => {
  const { vms, agents, mk, store } = await setup();
  const sw = mk();
  const prepared = await sw.prepare('vm1', 'b');
  t.deepEqual(agents.calls.filter((c) => !c.startsWith('activate@a')), ['prepare@b', 'prepare@a']);
  t.deepEqual(agents.holders('vm1'), ['a'], 'nothing moved at prepare');
  t.truthy(await store.get('ipshadow/journal/vm1'), 'journaled with its token');
  // A concurrent switch of the same VM waits for the prepared one.
  let otherDone = false;
  const other = sw.trigger('vm1', 'b').then(
    () => (otherDone = true),
    () => (otherDone = true),
  );
  await new Promise((r) => setTimeout(r, 20));
  t.false(otherDone, 'the VM is held while prepared');
  const ev = await prepared.complete();
  t.is(ev.status, 'SUCCEEDED');
  t.is(ev.fencing_token, prepared.fencingToken);
  t.deepEqual(ev.steps.map((s) => s.step), ['prepare', 'prepare', 'deactivate', 'activate', 'commit', 'lease']);
  t.deepEqual(agents.holders('vm1'), ['b']);
  t.is(vms.get('vm1').active_host, 'b');
  await other;
  t.true(otherDone);
  t.is(await store.get('ipshadow/journal/vm1'), undefined);
  t.is((await prepared.abandon('late')).status, 'SUCCEEDED', 'settled once: a later abandon returns the outcome');
});

test('prepared ahead and abandoned: nothing moves, the switch is recorded ROLLED_BACK and the VM is free again', async (t) => {
  const { agents, mk, store } = await setup();
  const sw = mk();
  const prepared = await sw.prepare('vm1', 'b');
  const ev = await prepared.abandon('the guest did not switch');
  t.is(ev.status, 'ROLLED_BACK');
  t.regex(ev.error, /not carried out: the guest did not switch/);
  t.deepEqual(agents.holders('vm1'), ['a']);
  t.false(agents.calls.some((c) => c.startsWith('deactivate') || c.startsWith('activate@b')));
  t.is(await store.get('ipshadow/journal/vm1'), undefined);
  t.is((await sw.trigger('vm1', 'b')).status, 'SUCCEEDED', 'the VM is not held any more');
  t.true((await sw.list('vm1', 10)).some((e) => e.status === 'ROLLED_BACK' && e.error.includes('not carried out')));
});

test('prepared ahead and withdrawn (its switchover refused): nothing moves, nothing is recorded, the VM is free again', async (t) => {
  const { agents, mk, store } = await setup();
  const sw = mk();
  const prepared = await sw.prepare('vm1', 'b');
  await prepared.withdraw('the switchover was refused');
  t.deepEqual(agents.holders('vm1'), ['a']);
  t.false(agents.calls.some((c) => c.startsWith('deactivate') || c.startsWith('activate@b')));
  t.is(await store.get('ipshadow/journal/vm1'), undefined);
  t.deepEqual(await sw.list('vm1', 10), [], 'no switchover recorded');
  await t.throwsAsync(prepared.complete(), { message: /withdrawn/ }, 'a withdrawn switch cannot be carried out after all');
  t.is((await sw.trigger('vm1', 'b')).status, 'SUCCEEDED', 'the VM is not held any more');
});

test('a prepared switch neither completed nor abandoned is abandoned after its timeout, releasing the VM', async (t) => {
  const { agents, mk } = await setup();
  const sw = mk();
  await sw.prepare('vm1', 'b', 30);
  await new Promise((r) => setTimeout(r, 60)); // the timer is unref'd: keep the test's loop alive past it
  const ev = await sw.trigger('vm1', 'b');
  t.is(ev.status, 'SUCCEEDED');
  t.true((await sw.list('vm1', 10)).some((e) => e.status === 'ROLLED_BACK' && /not completed within 30 ms/.test(e.error)));
  t.deepEqual(agents.holders('vm1'), ['b']);
});

test('prepare refuses a destination without a current shadow before touching anything, and does not hold the VM', async (t) => {
  const { agents, mk } = await setup();
  const sw = mk();
  await t.throwsAsync(() => sw.prepare('vm1', 'c'), { message: /behind on c/ });
  t.deepEqual(agents.calls.filter((c) => !c.startsWith('activate@a')), []);
  t.is((await sw.trigger('vm1', 'b')).status, 'SUCCEEDED');
});

// A coordinator killed (SIGKILL by PID) in the middle of a VM switchover, then restarted, with real
// processes: hv-a's agent runs a QEMU (TCG) guest, hv-b holds its memory shadow and a shadow QEMU.
// `umbractl migrate g1 --to hv-b` prints each step as it starts; when the pause starts, the
// coordinator is killed: the source agent carries on with the source side it was given in one call
// (pause, final flush, device state to the shadow QEMU), so the guest is left paused on hv-a with
// its device state loaded on hv-b and the journal before the resume. Restarted on the same data,
// the coordinator resolves the journal it left in level
// (rolling back, or forward when the guest already runs on hv-b): afterwards the guest runs on
// exactly one host (QMP status of both copies through the agents' VmService), from the same boot,
// answering probes, and its address is active on exactly that host.
import test from 'ava';
import { type MigrateRun, SwitchoverCluster, VM, skipReason } from './switchover-fixture';
import { waitFor } from '../../helpers/netns';

const why = skipReason();
if (why) {
  test(`VM switchover with a coordinator restart (skipped: ${why})`, (t) => {
    t.log(`skipped: ${why}`);
    t.pass();
  });
} else {
  const c = new SwitchoverCluster();

  test.before(async () => {
    await c.start('cr');
    await c.ctl(['replication', 'start', VM, '--from', 'hv-a', '--to', 'hv-b']);
  });

  test.after.always(async () => {
    await c.cleanup();
  });

  test.serial('coordinator killed while the source is switched out (pause, flush, device state), restarted: the journal is resolved, the guest runs on exactly one host', async (t) => {
    const before = await c.waitCounterAbove(-1, 'guest answering before the switchover', 60000);
    let killed: Promise<void> | undefined;
    const run: MigrateRun = await c.migrateWhenReady('hv-b', (s) => {
      if (s.step === 'pause-source' && s.started && !killed) killed = c.killCoordinator();
    });
    t.log(run.stdout.trim());
    t.truthy(killed, 'the coordinator was killed when pause-source started');
    await killed;
    t.is(run.status, undefined, 'umbractl saw no outcome: the coordinator died mid-switchover');
    t.true(run.steps.some((s) => s.step === 'pause-source'), 'the source was paused before the kill');

    // While no coordinator runs, the guest must not run on two hosts.
    const during = await c.localCopies();
    t.log(`with the coordinator down: ${during.map((v) => `${v.host} ${v.status}`).join('; ')}`);
    t.true(during.filter((v) => v.running).length <= 1, 'never running on two hosts');

    // Down long enough that the agents' reconnect delay (doubling up to 10 s) outlasts the restart:
    // the restarted coordinator must give hv-a and hv-b no verdict before they are back (restart
    // grace) and must not retire hv-b's IP shadow meanwhile (ipActiveHosts below fails on its NOT_FOUND).
    await new Promise((r) => setTimeout(r, 8000));
    await c.startCoordinator();
    await waitFor('journal resolved after the restart', async () => c.coordinator.log.some((l) => /unfinished switchovers resolved/.test(l)), 30000, 200).catch((err) => {
      throw new Error(`${(err as Error).message}; coordinator: ${c.coordinator.log.filter((l) => /switchover|error/i.test(l)).slice(-10).join('\n')}`);
    });
    // The VM switchover's record (the IP switch of a roll-forward records its own as well: its
    // steps prepare and deactivate the address, which a VM switchover's never do itself).
    const records = (await c.migrations()).filter((r) => !r.steps.some((s) => s.step === 'prepare' || s.step === 'deactivate'));
    t.log(records.map((r) => `${r.id} ${r.status} ${r.error} [${r.steps.map((s) => `${s.step}@${s.host_id}:${s.ok ? 'ok' : s.error}`).join(', ')}]`).join('\n'));
    t.is(records.length, 1, 'one switchover recorded');
    t.true(['ROLLED_BACK', 'SUCCEEDED'].includes(records[0].status), `resolved: ${records[0].status} ${records[0].error}`);
    const host = records[0].status === 'SUCCEEDED' ? 'hv-b' : 'hv-a';
    t.log(`resolved by ${records[0].status === 'SUCCEEDED' ? 'rolling forward' : 'rolling back'}: the guest runs on ${host}`);

    // Exactly one copy runs, on the host the journal resolved to, with the same boot, counting on.
    const copies = await c.localCopies();
    t.log(copies.map((v) => `${v.host}: ${v.status} pid ${v.pid}`).join('; '));
    t.deepEqual(copies.filter((v) => v.running).map((v) => v.host), [host]);
    const after = await c.waitCounterAbove(before.counter, 'guest answering after the restart');
    t.is(after.boot, before.boot, 'same boot: no reboot');
    const later = await c.waitCounterAbove(after.counter, `counter advancing on ${host}`);
    t.is(later.boot, before.boot);
    t.deepEqual((await c.localCopies()).filter((v) => v.running).map((v) => v.host), [host], `still running on ${host} only`);
    // The address is active on exactly that host.
    t.deepEqual((await c.ipActiveHosts()).map((h) => h.host), [host]);
  });
}

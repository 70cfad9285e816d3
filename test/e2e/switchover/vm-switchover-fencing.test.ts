// Fencing tokens on a switched VM's address, with real processes: hv-a's agent runs a QEMU (TCG)
// guest that switches over to hv-b (fencing token T of that switchover). An activation of the
// guest's address on hv-a with an older token than the ones the agents accepted is refused, as is
// a deactivation on hv-b with an older token; the address stays active on hv-b only and the guest
// keeps answering from there.
import test from 'ava';
import { SwitchoverCluster, VM, skipReason } from './switchover-fixture';

const why = skipReason();
if (why) {
  test(`VM switchover fencing (skipped: ${why})`, (t) => {
    t.log(`skipped: ${why}`);
    t.pass();
  });
} else {
  const c = new SwitchoverCluster();

  test.before(async () => {
    await c.start('fe');
    await c.ctl(['replication', 'start', VM, '--from', 'hv-a', '--to', 'hv-b']);
  });

  test.after.always(async () => {
    await c.cleanup();
  });

  test.serial('after a switchover, stale fencing tokens on the VM address are refused on both hosts', async (t) => {
    const before = await c.waitCounterAbove(-1, 'guest answering before the switchover', 60000);
    const run = await c.migrateWhenReady('hv-b');
    t.log(run.stdout.trim());
    t.is(run.status, 'SUCCEEDED', run.stderr);
    const token = run.fencingToken!;
    t.true(token > 0, 'the switchover has a fencing token');
    t.deepEqual(await c.ipActiveHosts(), [{ host: 'hv-b', token }], 'active on hv-b with the switchover token');

    // A stale coordinator (older token) tries to bring the address back to hv-a: refused.
    const activate = await c.agentCall('hv-a', 'IpShadowService', 'ActivateIp', { vm_id: VM, fencing_token: String(token - 1) });
    t.is(activate.code, 9, JSON.stringify(activate)); // FAILED_PRECONDITION
    t.regex(activate.details, /stale/);
    // ...or to take it away from hv-b: refused too.
    const deactivate = await c.agentCall('hv-b', 'IpShadowService', 'DeactivateIp', { vm_id: VM, fencing_token: String(token - 1) });
    t.is(deactivate.code, 9, JSON.stringify(deactivate));
    t.regex(deactivate.details, /stale/);

    // Nothing moved: the address is active on hv-b only, the guest answers from there.
    t.deepEqual((await c.ipActiveHosts()).map((h) => h.host), ['hv-b']);
    t.deepEqual((await c.localCopies()).filter((v) => v.running).map((v) => v.host), ['hv-b']);
    const after = await c.waitCounterAbove(before.counter, 'guest answering on hv-b');
    t.is(after.boot, before.boot, 'same boot');
  });
}

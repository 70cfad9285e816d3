// Rollback of a VM switchover whose destination fails after the source was paused, with real
// processes: hv-a's agent runs a QEMU (TCG) guest, hv-b holds its memory shadow and a shadow QEMU.
// `umbractl migrate g1 --to hv-b` prints each step as it starts; when the source's pause starts,
// the test kills hv-b's shadow QEMU (SIGKILL by PID). Whether the kill lands before the device
// state goes out (the migration fails) or after (the destination cannot resume), the switchover
// must end ROLLED_BACK: the guest runs again on hv-a only (same boot, counter continues, probes
// answered), and its address is active on hv-a only.
import test from 'ava';
import { type MigrateRun, SwitchoverCluster, VM, skipReason } from './switchover-fixture';

const why = skipReason();
if (why) {
  test(`VM switchover rollback (skipped: ${why})`, (t) => {
    t.log(`skipped: ${why}`);
    t.pass();
  });
} else {
  const c = new SwitchoverCluster();

  test.before(async () => {
    await c.start('rb');
    await c.ctl(['replication', 'start', VM, '--from', 'hv-a', '--to', 'hv-b']);
  });

  test.after.always(async () => {
    await c.cleanup();
  });

  test.serial('the shadow QEMU dies after the source paused: ROLLED_BACK, the guest resumes on the source with its address', async (t) => {
    const before = await c.waitCounterAbove(-1, 'guest answering before the switchover', 60000);
    let shadowPid = 0;
    let killedAt: string | undefined;
    const run: MigrateRun = await c.migrateWhenReady(
      'hv-b',
      (s) => {
        if (s.step === 'pause-source' && s.started && !killedAt && shadowPid > 0) {
          process.kill(shadowPid, 'SIGKILL');
          killedAt = s.step;
        }
      },
      {
        // The shadow QEMU the switchover would use (it may be relaunched between refusals).
        beforeAttempt: async () => {
          const r = await c.agentCall('hv-b', 'VmService', 'QueryVm', { vm_id: VM, role: 'VM_ROLE_SHADOW' });
          const vm = r.code === 0 ? (r.response!.vm as { pid: number; status: string }) : undefined;
          shadowPid = vm && vm.status === 'inmigrate' ? Number(vm.pid) : 0;
          return shadowPid > 0;
        },
      },
    );
    t.log(run.stdout.trim());
    t.is(killedAt, 'pause-source', 'the shadow QEMU was killed when the pause started');
    t.is(run.status, 'ROLLED_BACK', run.stderr);
    const pause = run.steps.find((s) => s.step === 'pause-source' && !s.started);
    t.truthy(pause, 'the source was paused');
    const progress = run.stdout.split('step timings:')[0];
    t.regex(progress, /(flush-memory|migrate-device-state|resume-destination)\s+hv-[ab]\s+.*FAILED/, 'a forward step failed');
    t.truthy(run.steps.find((s) => s.step === 'rollback-resume-source' && !s.started && s.host === 'hv-a'), 'the source was resumed');
    t.notRegex(progress, /rollback-resume-source\s+hv-a\s+.*FAILED/);

    // The guest runs on the source only, from the same boot, and keeps counting.
    const copies = await c.localCopies();
    t.false(copies.some((v) => v.pid === shadowPid), 'the killed shadow QEMU is no copy of the guest');
    t.log(copies.map((v) => `${v.host}: ${v.status} pid ${v.pid}`).join('; '));
    t.deepEqual(copies.filter((v) => v.running).map((v) => v.host), ['hv-a']);
    const after = await c.waitCounterAbove(before.counter, 'guest answering after the rollback');
    t.is(after.boot, before.boot, 'same boot: no reboot');
    const later = await c.waitCounterAbove(after.counter, 'counter advancing on hv-a');
    t.is(later.boot, before.boot);
    t.deepEqual((await c.localCopies()).filter((v) => v.running).map((v) => v.host), ['hv-a'], 'still running on hv-a only');
    // The address stayed on the source, and only there.
    t.deepEqual((await c.ipActiveHosts()).map((h) => h.host), ['hv-a']);
  });

  test.serial('the destination agent is killed after the source paused: ROLLED_BACK, the guest resumes on the source with its address', async (t) => {
    // After the first rollback the coordinator prepares a fresh shadow QEMU on hv-b; wait until it is ready again.
    const before = await c.waitCounterAbove(-1, 'guest answering before the switchover', 30000);
    const agentB = c.agents['hv-b'].child;
    let killed = false;
    const run: MigrateRun = await c.migrateWhenReady('hv-b', (s) => {
      if (s.step === 'pause-source' && s.started && !killed) {
        killed = agentB.kill('SIGKILL');
      }
    });
    t.log(run.stdout.trim());
    t.true(killed, 'hv-b agent killed when the pause started');
    t.is(run.status, 'ROLLED_BACK', run.stderr);
    const progress = run.stdout.split('step timings:')[0];
    t.regex(progress, /pause-source\s+hv-a\s+.*ok/, 'the source was paused');
    t.regex(progress, /rollback-resume-source\s+hv-a\s+.*ok/, 'the source was resumed');

    const copies = await c.localCopies().catch(() => undefined);
    // hv-b's agent is gone: ask hv-a, and check hv-b's QEMUs (they outlive the agent) by their QMP status.
    const a = await c.agentCall('hv-a', 'VmService', 'QueryVm', { vm_id: VM, role: 'VM_ROLE_LOCAL' });
    t.is(a.code, 0, JSON.stringify(a));
    t.true((a.response!.vm as { running: boolean }).running, 'running on hv-a');
    t.is(copies, undefined, 'hv-b cannot be asked (its agent is dead)');
    t.deepEqual(await c.runningQemusOf('hv-b'), [], 'no QEMU runs the guest on hv-b');
    const after = await c.waitCounterAbove(before.counter, 'guest answering after the rollback');
    t.is(after.boot, before.boot, 'same boot: no reboot');
    const later = await c.waitCounterAbove(after.counter, 'counter advancing on hv-a');
    t.is(later.boot, before.boot);
    const ipA = await c.agentCall('hv-a', 'IpShadowService', 'GetIpState', { vm_id: VM });
    t.true(ipA.response?.active === true, `address active on hv-a: ${JSON.stringify(ipA)}`);
    t.false(await c.ipActiveInNamespace('hv-b'), 'address not active in hv-b kernel tables');
  });
}

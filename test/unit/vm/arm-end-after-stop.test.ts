// What an autostart-armed shadow's run state after a stop says about an armed resume that did not
// see the load (called off, failed or timed out), or that a pause called off after it.
import test from 'ava';
import { armEndAfterStop } from '../../../agent/vm/arm-end-after-stop';

test('still waiting for the device state: the guest did not run, and now will not', (t) => {
  t.is(armEndAfterStop('inmigrate', true), 'not-run');
  t.is(armEndAfterStop('inmigrate', false), 'not-run');
});

test('the load ended: a called-off resume reports the run QEMU made; a failed wait goes on with it', (t) => {
  for (const status of ['paused', 'running', 'suspended']) {
    t.is(armEndAfterStop(status, true), 'ran', status);
    t.is(armEndAfterStop(status, false), 'loaded', status);
  }
});

test('QMP failed: a called-off switchover assumes the guest ran; a failed wait reports its failure', (t) => {
  t.is(armEndAfterStop('unknown', true), 'ran');
  t.is(armEndAfterStop('unknown', false), 'not-run');
});

test('a QEMU that is gone or ended its incoming migration otherwise ran nothing', (t) => {
  for (const status of ['exited', 'finish-migrate', 'postmigrate', 'internal-error', 'shutdown']) {
    t.is(armEndAfterStop(status, true), 'not-run', status);
    t.is(armEndAfterStop(status, false), 'not-run', status);
  }
});

// Memory shadows follow IP shadow placement: started, reshaped and stopped only when this planner
// owns the replication.
import test from 'ava';
import { planMemoryFollow } from '../../../coordinator/switchover/memory-follow';

test('a VM with IP shadows and no replication gets one from its active host to those hosts', (t) => {
  t.deepEqual(planMemoryFollow([{ vmId: 'vm1', activeHost: 'a', shadowHosts: ['c', 'b'] }], []), [{ kind: 'start', vmId: 'vm1', source: 'a', shadows: ['b', 'c'] }]);
});

test('nothing to do when the replication already matches, or the VM has no IP shadow', (t) => {
  t.deepEqual(planMemoryFollow([{ vmId: 'vm1', activeHost: 'a', shadowHosts: ['b', 'c'] }], [{ vm_id: 'vm1', source_host: 'a', shadow_hosts: ['c', 'b'], auto: true }]), []);
  t.deepEqual(planMemoryFollow([{ vmId: 'vm1', activeHost: 'a', shadowHosts: [] }], []), []);
  t.deepEqual(planMemoryFollow([{ vmId: 'vm1', activeHost: 'a', shadowHosts: ['a'] }], []), [], 'the active host is no shadow of itself');
});

test('after a switchover (another active host) or a new placement, its own replication is reshaped', (t) => {
  const rec = { vm_id: 'vm1', source_host: 'a', shadow_hosts: ['b', 'c'], auto: true };
  t.deepEqual(planMemoryFollow([{ vmId: 'vm1', activeHost: 'b', shadowHosts: ['a', 'c'] }], [rec]), [{ kind: 'start', vmId: 'vm1', source: 'b', shadows: ['a', 'c'] }]);
  t.deepEqual(planMemoryFollow([{ vmId: 'vm1', activeHost: 'a', shadowHosts: ['b', 'd'] }], [rec]), [{ kind: 'start', vmId: 'vm1', source: 'a', shadows: ['b', 'd'] }]);
});

test("an operator's replication is never reshaped or stopped", (t) => {
  const manual = { vm_id: 'vm1', source_host: 'a', shadow_hosts: ['d'] };
  t.deepEqual(planMemoryFollow([{ vmId: 'vm1', activeHost: 'a', shadowHosts: ['b', 'c'] }], [manual]), []);
  t.deepEqual(planMemoryFollow([], [manual]), []);
});

test('its own replication stops when the VM has no IP shadow placed any more', (t) => {
  const rec = { vm_id: 'vm1', source_host: 'a', shadow_hosts: ['b'], auto: true };
  t.deepEqual(planMemoryFollow([{ vmId: 'vm1', activeHost: 'a', shadowHosts: [] }], [rec]), [{ kind: 'stop', vmId: 'vm1', why: 'no IP shadow of it is placed any more' }]);
  t.deepEqual(planMemoryFollow([], [rec]), [{ kind: 'stop', vmId: 'vm1', why: 'no IP shadow of it is placed any more' }]);
});

test('a VM whose replication an operator stopped is not started again', (t) => {
  const p = [{ vmId: 'vm1', activeHost: 'a', shadowHosts: ['b'] }];
  t.deepEqual(planMemoryFollow(p, [], new Set(['vm1'])), []);
  t.deepEqual(planMemoryFollow(p, [], new Set(['vm2'])), [{ kind: 'start', vmId: 'vm1', source: 'a', shadows: ['b'] }]);
});

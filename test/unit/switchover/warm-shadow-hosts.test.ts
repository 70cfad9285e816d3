// Warm shadows as the ranker sees them: memory images of the replication from the VM's host
// (minus those awaiting a full copy), else current IP shadows.
import test from 'ava';
import { warmShadowHosts, type WarmShadowSources } from '../../../coordinator/switchover/warm-shadow-hosts';

function sources(o: Partial<WarmShadowSources> = {}): WarmShadowSources {
  return {
    activeHost: (vm) => (vm === 'vm1' ? 'a' : undefined),
    memoryShadow: () => undefined,
    hostIds: () => ['a', 'b', 'c', 'd'],
    ipShadowCurrent: (_vm, h) => h === 'b' || h === 'c',
    ...o,
  };
}

test('a VM without memory replication is warm where its IP shadow is current', (t) => {
  t.deepEqual(warmShadowHosts(sources(), 'vm1'), ['b', 'c']);
});

test('a replicated VM is warm only on its memory shadow hosts, whatever its IP shadows', (t) => {
  const s = sources({ memoryShadow: () => ({ source_host: 'a', shadow_hosts: ['c', 'd'] }) });
  t.deepEqual(warmShadowHosts(s, 'vm1'), ['c', 'd']);
});

test('an image awaiting a full copy is not warm', (t) => {
  const s = sources({ memoryShadow: () => ({ source_host: 'a', shadow_hosts: ['c', 'd'], resync_pending: ['d'] }) });
  t.deepEqual(warmShadowHosts(s, 'vm1'), ['c']);
});

test('replication from a host the VM has left warms nothing', (t) => {
  const s = sources({ memoryShadow: () => ({ source_host: 'b', shadow_hosts: ['c'] }) });
  t.deepEqual(warmShadowHosts(s, 'vm1'), []);
});

test('an unknown VM has no warm shadow', (t) => {
  t.deepEqual(warmShadowHosts(sources(), 'vm-unknown'), []);
});

// ipshadow takes a VM's tap from the vm module (a shadow QEMU's own tap) before static config,
// looked up at call time so the vm module may start after ipshadow.
import test from 'ava';
import { activationSpecFor } from '../../../agent/ipshadow/activation-spec-builder';
import { vmTapLookup } from '../../../agent/ipshadow/vm-tap-source';
import type { RunningAgentModule } from '../../../agent/agent-module';
import { vmConfig } from '../shadow/fixtures';

const agentNoTaps = { vms: [], defaultMode: 'bridged' as const, defaultInterface: 'br0' };

test('bridged and routed activation use the vm module tap with no static config', (t) => {
  const modules = new Map<string, RunningAgentModule>();
  const lookup = vmTapLookup(modules);
  t.throws(() => activationSpecFor(vmConfig(), agentNoTaps, lookup), { message: /^tap: is required in bridged mode/ }, 'no vm module yet: no tap');
  const asked: string[] = [];
  modules.set('vm', {
    close: async () => undefined,
    tapOf: (vmId: string, mac: string) => {
      asked.push(`${vmId}/${mac}`);
      return vmId === 'vm1' && mac === '52:54:00:00:00:01' ? 'ush0a1b2c3d4e' : undefined;
    },
  } as RunningAgentModule);
  t.like(activationSpecFor(vmConfig(), agentNoTaps, lookup), { mode: 'bridged', tap: 'ush0a1b2c3d4e', mac: '52:54:00:00:00:01', interface: 'br0' });
  t.like(activationSpecFor(vmConfig({ mode: 'routed' }), { ...agentNoTaps, defaultMode: 'address' }, lookup), { mode: 'routed', tap: 'ush0a1b2c3d4e' });
  t.deepEqual(asked, ['vm1/52:54:00:00:00:01', 'vm1/52:54:00:00:00:01']);
  t.throws(() => activationSpecFor(vmConfig({ vm_id: 'vm2' }), agentNoTaps, lookup), { message: /^tap: / }, 'a VM the vm module does not run here');
});

test('the vm module tap wins over a static one; static config still serves VMs the vm module does not know', (t) => {
  const modules = new Map<string, RunningAgentModule>([['vm', { close: async () => undefined, tapOf: (id: string) => (id === 'vm1' ? 'ush-live' : undefined) } as RunningAgentModule]]);
  const agent = { vms: [{ id: 'vm1', mac: '52:54:00:00:00:01', tap: 'tap-static' }, { id: 'vm2', mac: '52:54:00:00:00:02', tap: 'tap-vm2' }], defaultMode: 'bridged' as const, defaultInterface: 'br0' };
  t.is(activationSpecFor(vmConfig(), agent, vmTapLookup(modules)).tap, 'ush-live');
  t.is(activationSpecFor(vmConfig({ vm_id: 'vm2', mac: '52:54:00:00:00:02' }), agent, vmTapLookup(modules)).tap, 'tap-vm2');
  t.is(activationSpecFor(vmConfig(), agent).tap, 'tap-static', 'without the lookup: static config as before');
});

// Codec warm-up: the message types a service carries are found through nested fields and across
// packages, unrelated ones are left alone, and every type gets built when no service is named.
import test from 'ava';
import { packageDefinition, warmUpMessageCodecs } from '../../../shared/proto';

test('a service: its request and response types, the types nested in them, also from other packages', (t) => {
  const vm = warmUpMessageCodecs(['umbra.agent.v1.VmService']);
  t.true(vm.includes('umbra.agent.v1.SwitchOutVmResponse'));
  t.true(vm.includes('umbra.agent.v1.VmInfo'), 'reached only through ListVmsResponse.vms and others');
  t.false(vm.includes('umbra.types.v1.Host'), 'not carried by VmService');
  const shadow = warmUpMessageCodecs(['umbra.coordinator.v1.ShadowService']);
  t.true(shadow.includes('umbra.agent.v1.VmIpConfig'), 'a field typed by another package');
});

test('no service named: every message type, and encoding works the same afterwards', (t) => {
  const all = warmUpMessageCodecs();
  const messages = Object.entries(packageDefinition()).filter(([, d]) => (d as { format?: string }).format === 'Protocol Buffer 3 DescriptorProto');
  t.is(all.length, messages.length);
  const host = packageDefinition()['umbra.types.v1.Host'] as unknown as { serialize(v: object): Buffer; deserialize(b: Buffer): { state: string; awaiting_contact: boolean } };
  t.like(host.deserialize(host.serialize({ state: 'HOST_STATE_DOWN', awaiting_contact: true })), { state: 'HOST_STATE_DOWN', awaiting_contact: true });
});

test('an unknown service is an error, not a silent no-op', (t) => {
  t.throws(() => warmUpMessageCodecs(['umbra.agent.v1.NoSuchService']), { message: /NoSuchService is not defined/ });
});

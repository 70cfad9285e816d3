import test from 'ava';
import { serviceDefinition } from '../../../shared/proto';
import { factsToWire, hostFromWire, hostToWire, parseHostFacts } from '../../../coordinator/api/host-messages';
import { InvalidArgumentError } from '../../../shared/errors';
import { hostFacts } from '../../fakes/host-facts';

test('RegisterHost request survives the wire with 64-bit fields intact', (t) => {
  const def = serviceDefinition('umbra.coordinator.v1.CoordinatorService').RegisterHost;
  const facts = hostFacts('h1', { capacity: { ...hostFacts('h1').capacity, memory_bytes: 2 ** 53 - 1 } });
  const bytes = def.requestSerialize({ facts: factsToWire(facts) });
  const back = def.requestDeserialize(bytes) as { facts: unknown };
  t.deepEqual(parseHostFacts(back.facts), facts);
});

test('Host and enum values round trip through GetHost', (t) => {
  const def = serviceDefinition('umbra.coordinator.v1.CoordinatorService').GetHost;
  const host = { facts: hostFacts('h2'), state: 'HOST_STATE_SUSPECT' as const, registered_at_unix_ms: 1, last_heartbeat_unix_ms: 2, state_changed_at_unix_ms: 3, usage: { cpu_load_ratio: 0.25, memory_used_bytes: 10, memory_available_bytes: 20 } };
  const back = def.responseDeserialize(def.responseSerialize({ host: hostToWire(host) })) as { host: ReturnType<typeof hostToWire> };
  t.deepEqual(hostFromWire(back.host), host);
});

test('unknown fields are ignored and missing ones default', (t) => {
  const def = serviceDefinition('umbra.agent.v1.AgentService').GetHealth;
  const back = def.responseDeserialize(def.responseSerialize({ healthy: true })) as Record<string, unknown>;
  t.is(back.healthy, true);
  t.deepEqual(back.capabilities, []);
});

const invalid: Array<[string, (f: ReturnType<typeof hostFacts>) => unknown, string]> = [
  ['empty host id', (f) => ({ ...f, host_id: '' }), 'facts.host_id'],
  ['host id with spaces', (f) => ({ ...f, host_id: 'a b' }), 'facts.host_id'],
  ['zero cores', (f) => ({ ...f, capacity: { ...f.capacity, cpu_cores: 0 } }), 'facts.capacity.cpu_cores'],
  ['no capacity', (f) => ({ ...f, capacity: undefined }), 'facts.capacity'],
  ['bad endpoint', (f) => ({ ...f, agent_endpoint: 'nowhere' }), 'facts.agent_endpoint'],
  ['bad memory', (f) => ({ ...f, capacity: { ...f.capacity, memory_bytes: 'lots' } }), 'facts.capacity.memory_bytes'],
  ['nic without name', (f) => ({ ...f, capacity: { ...f.capacity, nics: [{ mac: 'x' }] } }), 'facts.capacity.nics[0].name'],
];

for (const [name, mutate, field] of invalid) {
  test(`invalid facts name the field: ${name}`, (t) => {
    const err = t.throws(() => parseHostFacts(mutate(factsToWire(hostFacts('h1')) as never)), { instanceOf: InvalidArgumentError });
    t.is(err!.field, field);
  });
}

import test from 'ava';
import { serviceDefinition } from '../../../shared/proto';
import { factsToWire, hostFromWire, hostToWire, parseHostFacts } from '../../../coordinator/api/host-messages';
import { InvalidArgumentError } from '../../../shared/errors';
import { defaultPolicy, policyFromWire, policyToWire } from '../../../coordinator/predict/prediction-policy';
import { parseTelemetryReport } from '../../../coordinator/predict/telemetry-report';
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

test('the policy and a VM profile survive the wire with the failure-domain rule and GPUs', (t) => {
  const svc = serviceDefinition('umbra.coordinator.v1.PredictionService');
  const policy = { ...defaultPolicy(), otherFailureDomain: { allVms: false, vmIds: ['db1', 'db2'] } };
  const back = svc.SetPolicy.requestDeserialize(svc.SetPolicy.requestSerialize({ policy: policyToWire(policy) })) as { policy: unknown };
  t.deepEqual(policyFromWire(back.policy).otherFailureDomain, { allVms: false, vmIds: ['db1', 'db2'] });
  // A policy written before the rule existed reads as none.
  const old = svc.SetPolicy.requestDeserialize(svc.SetPolicy.requestSerialize({ policy: { max_shadowed_vms: 2 } })) as { policy: unknown };
  t.deepEqual(policyFromWire(old.policy).otherFailureDomain, { allVms: false, vmIds: [] });
  const report = { host_id: 'hv-a', vms: [{ vm_id: 'train1', time_unix_ms: '1000', cpu_cores: 1, cpu_percent_of_allocation: 50, vcpus: 2, gpu_models: ['NVIDIA A100', 'NVIDIA A100'] }] };
  const got = svc.ReportTelemetry.requestDeserialize(svc.ReportTelemetry.requestSerialize(report)) as Record<string, unknown>;
  t.deepEqual(parseTelemetryReport('hv-a', got).vms[0].gpuModels, ['NVIDIA A100', 'NVIDIA A100']);
});

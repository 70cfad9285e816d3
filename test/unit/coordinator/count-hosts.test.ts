// The coordinator-load generator counts hosts in raw ListHostsResponse bytes: it must agree with a
// real encoding of the message and refuse bytes that are not one.
import test from 'ava';
import { serviceDefinition } from '../../../shared/proto';
import { countHosts } from '../../../bench/coordinator-load/count-hosts';

const listHosts = serviceDefinition('umbra.coordinator.v1.CoordinatorService').ListHosts;
const host = (i: number) => ({ facts: { host_id: `hv-${i}`, failure_domain: 'rack-1', agent_endpoint: `10.0.0.${i}:7701`, capacity: { cpu_cores: 8, cpu_model: 'x'.repeat(200) } }, state: 'HOST_STATE_UP' });

test('counts the hosts of real encodings, including entries longer than 127 bytes', (t) => {
  for (const n of [0, 1, 3, 200]) {
    const bytes = listHosts.responseSerialize({ hosts: Array.from({ length: n }, (_, i) => host(i)) });
    t.is(countHosts(bytes), n);
  }
});

test('truncated or foreign bytes are an error, not a count', (t) => {
  const bytes = listHosts.responseSerialize({ hosts: [host(1), host(2)] });
  t.throws(() => countHosts(bytes.subarray(0, bytes.length - 1)));
  t.throws(() => countHosts(Buffer.from([0x10, 0x01])));
});

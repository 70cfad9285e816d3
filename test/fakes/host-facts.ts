// Plausible host facts for tests.
import type { HostFacts } from '../../shared/host-types';

export function hostFacts(hostId: string, overrides: Partial<HostFacts> = {}): HostFacts {
  return {
    host_id: hostId,
    failure_domain: 'rack-1',
    capacity: {
      cpu_cores: 8,
      cpu_threads: 16,
      cpu_vendor: 'AMD',
      cpu_model: 'AMD EPYC 7B13',
      cpu_flags: ['avx2', 'sse4_2'],
      memory_bytes: 64 * 2 ** 30,
      gpu_models: [],
      nics: [{ name: 'eth0', mac: '02:00:00:00:00:01', speed_mbps: 10000, addresses: ['10.0.0.2/24'] }],
      kernel: '6.1.0-26-amd64',
      arch: 'x86_64',
    },
    agent_endpoint: '10.0.0.2:7701',
    agent_version: '0.1.0',
    ...overrides,
  };
}

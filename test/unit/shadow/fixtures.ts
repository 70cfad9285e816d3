// Shared fakes of the shadow unit tests: host records, VM configs, an event sink and recording agents.
import { UmbraError } from '../../../shared/errors';
import type { HostRecord } from '../../../shared/host-types';
import type { VmIpConfig } from '../../../shared/vm-ip-config';
import type { EventInput } from '../../../coordinator/core/event-log';
import type { ShadowAgentPort } from '../../../coordinator/shadow/shadow-manager';
import type { IpAgentPort } from '../../../coordinator/migrate/ip-agent-port';

const GIB = 1024 ** 3;

export function host(id: string, opts: { memoryGib?: number; usedGib?: number; state?: HostRecord['state'] } = {}): HostRecord {
  return {
    facts: {
      host_id: id,
      failure_domain: `rack-${id}`,
      capacity: { cpu_cores: 16, cpu_threads: 32, cpu_vendor: 'AMD', cpu_model: 'EPYC', cpu_flags: ['sse4_2'], memory_bytes: (opts.memoryGib ?? 64) * GIB, gpu_models: [], nics: [], kernel: '6.1', arch: 'x86_64' },
      agent_endpoint: `${id}:7701`,
      agent_version: 'test',
    },
    state: opts.state ?? 'HOST_STATE_UP',
    registered_at_unix_ms: 0,
    last_heartbeat_unix_ms: 0,
    state_changed_at_unix_ms: 0,
    usage: { cpu_load_ratio: 0.1, memory_used_bytes: (opts.usedGib ?? 8) * GIB, memory_available_bytes: 0 },
  };
}

export function vmConfig(over: Partial<VmIpConfig> = {}): VmIpConfig {
  return {
    vm_id: 'vm1', mac: '52:54:00:00:00:01', address: '10.0.0.50', prefix_length: 24, gateway: '10.0.0.1', dns_servers: ['10.0.0.53'],
    domain_name: 'lab', hostname: 'vm1', lease_time_sec: 600, renewal_time_sec: 300, rebinding_time_sec: 525, server_id: '10.0.0.1',
    lease_start_unix_ms: 1000, expires_at_unix_ms: 601_000, vlan_id: 0, mode: '', lease_state: 'bound', ...over,
  };
}

export class EventSink {
  readonly events: EventInput[] = [];
  async append(e: EventInput) {
    this.events.push(e);
    return { ...e, sequence: this.events.length, timestamp_unix_ms: 0, vm_id: e.vm_id ?? '', attributes: e.attributes ?? {} };
  }
  kinds(): string[] {
    return this.events.map((e) => e.kind);
  }
}

/** Agents in memory: shadows and active addresses per host, with failures to order. */
export class FakeAgents implements ShadowAgentPort, IpAgentPort {
  readonly shadows = new Map<string, Map<string, { version: number; config: VmIpConfig }>>();
  readonly active = new Map<string, Set<string>>();
  readonly tokens = new Map<string, number>();
  readonly calls: string[] = [];
  readonly down = new Set<string>();
  /** "activate@hv-b" style keys that fail once. */
  readonly failOnce = new Set<string>();
  /** Hosts whose agent predates PrepareIp (answers UNIMPLEMENTED). */
  readonly withoutPrepare = new Set<string>();

  private check(op: string, hostId: string) {
    this.calls.push(`${op}@${hostId}`);
    if (this.down.has(hostId)) throw new Error(`${hostId} unreachable`);
    if (this.failOnce.delete(`${op}@${hostId}`)) throw new Error(`${op} failed on ${hostId}`);
  }
  private fence(hostId: string, vmId: string, token: number) {
    const k = `${hostId}/${vmId}`;
    if ((this.tokens.get(k) ?? 0) > token) throw new Error(`stale token ${token}`);
    this.tokens.set(k, token);
  }

  async putShadow(hostId: string, _source: string, config: VmIpConfig, version: number): Promise<number> {
    this.check('put', hostId);
    const m = this.shadows.get(hostId) ?? new Map();
    this.shadows.set(hostId, m);
    const held = m.get(config.vm_id);
    if (!held || held.version <= version) m.set(config.vm_id, { version, config });
    return m.get(config.vm_id)!.version;
  }
  async removeShadow(hostId: string, vmId: string): Promise<void> {
    this.check('remove', hostId);
    this.shadows.get(hostId)?.delete(vmId);
  }
  async prepare(hostId: string, config: VmIpConfig, token: number): Promise<number> {
    this.check('prepare', hostId);
    if (this.withoutPrepare.has(hostId)) throw new UmbraError('UNIMPLEMENTED', 'unknown method PrepareIp');
    this.fence(hostId, config.vm_id, token);
    return 1;
  }
  async activate(hostId: string, config: VmIpConfig, token: number): Promise<number> {
    this.check('activate', hostId);
    this.fence(hostId, config.vm_id, token);
    const s = this.active.get(hostId) ?? new Set();
    this.active.set(hostId, s);
    s.add(config.vm_id);
    return 1;
  }
  async deactivate(hostId: string, config: VmIpConfig, token: number): Promise<number> {
    this.check('deactivate', hostId);
    this.fence(hostId, config.vm_id, token);
    this.active.get(hostId)?.delete(config.vm_id);
    return 1;
  }
  async state(hostId: string, config: VmIpConfig) {
    this.check('state', hostId);
    return { active: this.active.get(hostId)?.has(config.vm_id) ?? false, fencingToken: this.tokens.get(`${hostId}/${config.vm_id}`) ?? 0 };
  }
  holders(vmId: string): string[] {
    return [...this.active].filter(([, s]) => s.has(vmId)).map(([h]) => h).sort();
  }
}

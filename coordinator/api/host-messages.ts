// Converts host and event messages between the wire (umbra.types.v1) and our shapes, checking
// every field a client sends; a bad one is an InvalidArgumentError naming its path.
import { InvalidArgumentError } from '../../shared/errors';
import type { HostCapacity, HostFacts, HostRecord, HostState, HostUsage, Nic, UmbraEvent } from '../../shared/host-types';
import { requireEndpoint, requireHostId, requireString, toSafeInteger } from '../../shared/validate';

const MAX_LIST = 4096;
const HOST_STATES: readonly HostState[] = ['HOST_STATE_UP', 'HOST_STATE_SUSPECT', 'HOST_STATE_DOWN'];

function list<T>(field: string, value: unknown, each: (v: unknown, path: string) => T): T[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new InvalidArgumentError(field, 'must be a list');
  if (value.length > MAX_LIST) throw new InvalidArgumentError(field, `must have at most ${MAX_LIST} entries`);
  return value.map((v, i) => each(v, `${field}[${i}]`));
}

function optionalString(field: string, value: unknown, maxLength = 256): string {
  if (value === undefined || value === null || value === '') return '';
  return requireString(field, value, { maxLength });
}

function nonNegative(field: string, value: unknown): number {
  return toSafeInteger(field, value ?? 0, { min: 0 });
}

function parseNic(v: unknown, path: string): Nic {
  const n = (v ?? {}) as Record<string, unknown>;
  return {
    name: requireString(`${path}.name`, n.name, { maxLength: 15 }),
    mac: optionalString(`${path}.mac`, n.mac, 17),
    speed_mbps: nonNegative(`${path}.speed_mbps`, n.speed_mbps),
    addresses: list(`${path}.addresses`, n.addresses, (a, p) => requireString(p, a, { maxLength: 64 })),
  };
}

function parseCapacity(v: unknown, path: string): HostCapacity {
  if (!v || typeof v !== 'object') throw new InvalidArgumentError(path, 'is required');
  const c = v as Record<string, unknown>;
  const cores = nonNegative(`${path}.cpu_cores`, c.cpu_cores);
  if (cores < 1) throw new InvalidArgumentError(`${path}.cpu_cores`, 'must be at least 1');
  const memory = nonNegative(`${path}.memory_bytes`, c.memory_bytes);
  if (memory < 1) throw new InvalidArgumentError(`${path}.memory_bytes`, 'must be positive');
  return {
    cpu_cores: cores,
    cpu_threads: Math.max(cores, nonNegative(`${path}.cpu_threads`, c.cpu_threads)),
    cpu_vendor: optionalString(`${path}.cpu_vendor`, c.cpu_vendor),
    cpu_model: optionalString(`${path}.cpu_model`, c.cpu_model),
    cpu_flags: list(`${path}.cpu_flags`, c.cpu_flags, (f, p) => requireString(p, f, { maxLength: 64 })),
    memory_bytes: memory,
    gpu_models: list(`${path}.gpu_models`, c.gpu_models, (g, p) => requireString(p, g)),
    nics: list(`${path}.nics`, c.nics, parseNic),
    kernel: optionalString(`${path}.kernel`, c.kernel),
    arch: optionalString(`${path}.arch`, c.arch, 32),
  };
}

export function parseHostFacts(v: unknown, path = 'facts'): HostFacts {
  if (!v || typeof v !== 'object') throw new InvalidArgumentError(path, 'is required');
  const f = v as Record<string, unknown>;
  return {
    host_id: requireHostId(`${path}.host_id`, f.host_id),
    failure_domain: optionalString(`${path}.failure_domain`, f.failure_domain, 63),
    capacity: parseCapacity(f.capacity, `${path}.capacity`),
    agent_endpoint: requireEndpoint(`${path}.agent_endpoint`, f.agent_endpoint),
    agent_version: optionalString(`${path}.agent_version`, f.agent_version, 64),
  };
}

export function parseUsage(v: unknown, path = 'usage'): HostUsage {
  const u = (v ?? {}) as Record<string, unknown>;
  const load = Number(u.cpu_load_ratio ?? 0);
  if (!Number.isFinite(load) || load < 0) throw new InvalidArgumentError(`${path}.cpu_load_ratio`, 'must be a non-negative number');
  return {
    cpu_load_ratio: load,
    memory_used_bytes: nonNegative(`${path}.memory_used_bytes`, u.memory_used_bytes),
    memory_available_bytes: nonNegative(`${path}.memory_available_bytes`, u.memory_available_bytes),
  };
}

export function parseHostStates(v: unknown, path = 'states'): HostState[] {
  return list(path, v, (s, p) => {
    if (!HOST_STATES.includes(s as HostState)) throw new InvalidArgumentError(p, `must be one of ${HOST_STATES.join(', ')}`);
    return s as HostState;
  });
}

const HOST_VIEWS = ['HOST_VIEW_UNSPECIFIED', 'HOST_VIEW_BASIC', 'HOST_VIEW_FULL'] as const;
export type HostView = (typeof HOST_VIEWS)[number];

export function parseHostView(v: unknown, path = 'view'): HostView {
  if (v === undefined || v === null || v === '') return 'HOST_VIEW_UNSPECIFIED';
  if (!HOST_VIEWS.includes(v as HostView)) throw new InvalidArgumentError(path, `must be one of ${HOST_VIEWS.join(', ')}`);
  return v as HostView;
}

/** The BASIC view of a wire host: without the CPU flag list and NICs. */
export function basicView(h: ReturnType<typeof hostToWire>): ReturnType<typeof hostToWire> {
  return { ...h, facts: { ...h.facts, capacity: { ...h.facts.capacity, cpu_flags: [], nics: [] } } };
}

const str = (n: number) => String(n);

function capacityToWire(c: HostCapacity) {
  return { ...c, memory_bytes: str(c.memory_bytes), nics: c.nics.map((n) => ({ ...n, speed_mbps: str(n.speed_mbps) })) };
}

export function factsToWire(f: HostFacts) {
  return { ...f, capacity: capacityToWire(f.capacity) };
}

export function usageToWire(u: HostUsage) {
  return { cpu_load_ratio: u.cpu_load_ratio, memory_used_bytes: str(u.memory_used_bytes), memory_available_bytes: str(u.memory_available_bytes) };
}

/** `awaitingContact`: HostRegistry.awaitingContact for the host (its state is the stored one, no verdict yet). */
export function hostToWire(h: HostRecord, awaitingContact = false) {
  return {
    facts: factsToWire(h.facts),
    state: h.state,
    registered_at_unix_ms: str(h.registered_at_unix_ms),
    last_heartbeat_unix_ms: str(h.last_heartbeat_unix_ms),
    state_changed_at_unix_ms: str(h.state_changed_at_unix_ms),
    usage: usageToWire(h.usage),
    awaiting_contact: awaitingContact,
  };
}

export function eventToWire(e: UmbraEvent) {
  return {
    ...e,
    sequence: str(e.sequence),
    timestamp_unix_ms: str(e.timestamp_unix_ms),
    previous_state: e.previous_state ?? 'HOST_STATE_UNSPECIFIED',
    new_state: e.new_state ?? 'HOST_STATE_UNSPECIFIED',
  };
}

/** The reverse of hostToWire, for clients (umbractl) that read the wire shape. */
export function hostFromWire(w: ReturnType<typeof hostToWire>): HostRecord {
  const n = Number;
  return {
    facts: {
      ...w.facts,
      capacity: {
        ...w.facts.capacity,
        memory_bytes: n(w.facts.capacity.memory_bytes),
        nics: w.facts.capacity.nics.map((x) => ({ ...x, speed_mbps: n(x.speed_mbps) })),
      },
    },
    state: w.state,
    registered_at_unix_ms: n(w.registered_at_unix_ms),
    last_heartbeat_unix_ms: n(w.last_heartbeat_unix_ms),
    state_changed_at_unix_ms: n(w.state_changed_at_unix_ms),
    usage: { cpu_load_ratio: w.usage.cpu_load_ratio, memory_used_bytes: n(w.usage.memory_used_bytes), memory_available_bytes: n(w.usage.memory_available_bytes) },
  };
}

export function eventFromWire(w: ReturnType<typeof eventToWire>): UmbraEvent {
  return {
    ...w,
    sequence: Number(w.sequence),
    timestamp_unix_ms: Number(w.timestamp_unix_ms),
    previous_state: w.previous_state === 'HOST_STATE_UNSPECIFIED' ? undefined : (w.previous_state as HostState),
    new_state: w.new_state === 'HOST_STATE_UNSPECIFIED' ? undefined : (w.new_state as HostState),
  };
}

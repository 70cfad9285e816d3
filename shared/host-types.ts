// Host and event shapes used inside both programs. Field names follow the proto messages
// (umbra.types.v1) so conversion at the API edge is only about 64-bit integers and enums.

export interface Nic {
  name: string;
  mac: string;
  speed_mbps: number;
  addresses: string[];
}

export interface HostCapacity {
  cpu_cores: number;
  cpu_threads: number;
  cpu_vendor: string;
  cpu_model: string;
  cpu_flags: string[];
  memory_bytes: number;
  gpu_models: string[];
  nics: Nic[];
  kernel: string;
  arch: string;
}

export interface HostFacts {
  host_id: string;
  failure_domain: string;
  capacity: HostCapacity;
  agent_endpoint: string;
  agent_version: string;
}

export type HostState = 'HOST_STATE_UP' | 'HOST_STATE_SUSPECT' | 'HOST_STATE_DOWN';

export interface HostUsage {
  cpu_load_ratio: number;
  memory_used_bytes: number;
  memory_available_bytes: number;
}

export interface HostRecord {
  facts: HostFacts;
  state: HostState;
  registered_at_unix_ms: number;
  last_heartbeat_unix_ms: number;
  state_changed_at_unix_ms: number;
  usage: HostUsage;
}

export type EventKind =
  | 'EVENT_KIND_HOST_JOINED'
  | 'EVENT_KIND_HOST_LEFT'
  | 'EVENT_KIND_HOST_STATE_CHANGED'
  | 'EVENT_KIND_HOST_REREGISTERED'
  | 'EVENT_KIND_SHADOW_PLACED'
  | 'EVENT_KIND_SHADOW_RETIRED'
  | 'EVENT_KIND_SWITCHOVER'
  | 'EVENT_KIND_RECONCILED'
  | 'EVENT_KIND_ALERT'
  | 'EVENT_KIND_MEMORY_SHADOW_STARTED'
  | 'EVENT_KIND_MEMORY_SHADOW_STOPPED'
  | 'EVENT_KIND_MEMORY_SHADOW_FLUSHED'
  | 'EVENT_KIND_MIGRATION_RECOMMENDED'
  | 'EVENT_KIND_MIGRATION_TRIGGERED';

export interface UmbraEvent {
  sequence: number;
  timestamp_unix_ms: number;
  kind: EventKind;
  host_id: string;
  vm_id: string;
  message: string;
  previous_state?: HostState;
  new_state?: HostState;
  attributes: Record<string, string>;
}

export const EMPTY_USAGE: HostUsage = { cpu_load_ratio: 0, memory_used_bytes: 0, memory_available_bytes: 0 };

// The contract between the agent daemon and a capability (DHCP capture, IP activation, memory
// replication, VMs...): each is a module with its own config section, services and health, so
// capabilities plug in without the daemon knowing their insides.
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { ConfigReader } from '../shared/config-reader';
import type { ServiceBinding } from '../shared/grpc-server';
import type { KvStore } from '../shared/kv-store';
import type { TlsMaterial } from '../shared/tls';
import type { CapabilityStatus } from './os/capability-probe';

export interface AgentModuleContext {
  hostId: string;
  /** The agent's gRPC listen address ("host:port"): where peers reach it. */
  listen: string;
  /** The agent's data dir; modules keep files under `<dataDir>/<module name>/`. */
  dataDir: string;
  /** Where shadow images live (config shadow_image_dir; default `<dataDir>/shadow`). */
  shadowImageDir: string;
  /** The agent's store; each module uses keys under `<module name>/`. */
  store: KvStore;
  logger: Logger;
  metrics: Registry;
  /** Our own certificate and CA, for agent-to-agent channels. */
  tls: TlsMaterial;
  /** Dials a coordinator service with mTLS (the coordinator's identity is checked). */
  coordinatorClient(service: string): grpc.Client & Record<string, (...args: unknown[]) => unknown>;
  /** Puts a line in the agent's recent errors (health). */
  reportError(message: string): void;
  /**
   * The running modules by name, filled as they start: a module looks another up when it needs it
   * (at call time, so start order does not matter), through the interface the other one exports.
   */
  modules: ReadonlyMap<string, RunningAgentModule>;
}

export interface ModuleHealth {
  /** Reasons the agent is not healthy because of this module; empty when fine. */
  problems: string[];
  capabilities: CapabilityStatus[];
}

export interface RunningAgentModule {
  services?: ServiceBinding[];
  health?(): ModuleHealth | Promise<ModuleHealth>;
  close(): Promise<void>;
}

/** Each module's name (its config section, and how other modules look it up). */
export const AGENT_MODULE_NAMES = { ipshadow: 'ipshadow', vm: 'vm', replication: 'replication', profiler: 'profiler' } as const;

/**
 * The running module `name` seen through the interface `T` it exports, when it is running and has
 * `member` (a module that is off, or of another shape, gives undefined).
 */
export function moduleApi<T>(modules: ReadonlyMap<string, RunningAgentModule>, name: string, member: keyof T): T | undefined {
  const m = modules.get(name) as Partial<T> | undefined;
  return m && typeof m[member] !== 'undefined' ? (m as T) : undefined;
}

export interface AgentModuleDefinition<C = unknown> {
  /** Module name; also its config section key. */
  name: string;
  /** Parses the module's section (undefined when absent) and reports mistakes through `r`. */
  parseConfig(r: ConfigReader, raw: unknown, path: string): C;
  start(config: C, ctx: AgentModuleContext): Promise<RunningAgentModule>;
}

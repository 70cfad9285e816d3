// The contract between the coordinator daemon and a capability (shadows, leases, prediction,
// switchover...): a module with its own config section, services and background work.
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { ConfigReader } from '../shared/config-reader';
import type { ServiceBinding } from '../shared/grpc-server';
import type { KvStore } from '../shared/kv-store';
import type { TlsMaterial } from '../shared/tls';
import type { AgentClients } from './clients/agent-clients';
import type { EventLog } from './core/event-log';
import type { HostRegistry } from './core/host-registry';

export interface CoordinatorModuleContext {
  /** The coordinator's store; each module uses keys under `<module name>/`. */
  store: KvStore;
  dataDir: string;
  events: EventLog;
  hosts: HostRegistry;
  agents: AgentClients;
  logger: Logger;
  metrics: Registry;
  tls: TlsMaterial;
  /** Modules started before this one, by name, for modules that build on others. */
  modules: ReadonlyMap<string, RunningCoordinatorModule>;
}

export interface RunningCoordinatorModule {
  services?: ServiceBinding[];
  close(): Promise<void>;
}

export interface CoordinatorModuleDefinition<C = unknown> {
  /** Module name; also its config section key. */
  name: string;
  parseConfig(r: ConfigReader, raw: unknown, path: string): C;
  start(config: C, ctx: CoordinatorModuleContext): Promise<RunningCoordinatorModule>;
}

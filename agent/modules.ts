// The capabilities the agent runs, in start order. Each entry's name is its config section.
import type { AgentModuleDefinition } from './agent-module';
import { ipShadowAgentModule } from './ipshadow/ipshadow-module';
import { replicationAgentModule } from './replication/replication-module';

export const AGENT_MODULES: ReadonlyArray<AgentModuleDefinition<never>> = [
  ipShadowAgentModule as AgentModuleDefinition<never>,
  replicationAgentModule as AgentModuleDefinition<never>,
];

// The capabilities the agent runs, in start order. Each entry's name is its config section.
import type { AgentModuleDefinition } from './agent-module';
import { ipShadowAgentModule } from './ipshadow/ipshadow-module';
import { profilerAgentModule } from './profiler/profiler-module';
import { replicationAgentModule } from './replication/replication-module';
import { vmAgentModule } from './vm/vm-module';

export const AGENT_MODULES: ReadonlyArray<AgentModuleDefinition<never>> = [
  ipShadowAgentModule as AgentModuleDefinition<never>,
  // Before replication: VMs it launches are then running when replication is asked to start.
  vmAgentModule as AgentModuleDefinition<never>,
  replicationAgentModule as AgentModuleDefinition<never>,
  profilerAgentModule as AgentModuleDefinition<never>,
];

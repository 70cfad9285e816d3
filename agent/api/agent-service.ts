// gRPC handlers of umbra.agent.v1.AgentService. Health is readable by the coordinator, operators
// and the agent's own identity (the local `umbra-agent health` command uses it).
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { HandlerKit } from '../../shared/grpc-handlers';
import type { ServiceBinding } from '../../shared/grpc-server';
import type { HostFacts } from '../../shared/host-types';
import type { PeerIdentity } from '../../shared/peer-identity';
import { factsToWire } from '../../coordinator/api/host-messages';
import type { HealthReport } from '../core/health-report';

export const AGENT_SERVICE = 'umbra.agent.v1.AgentService';

export function agentService(deps: { hostId: string; health: () => Promise<HealthReport>; facts: () => HostFacts; logger: Logger }): ServiceBinding {
  const kit = new HandlerKit(deps.logger);
  const readers = (p: PeerIdentity) => p.role === 'coordinator' || p.role === 'operator' || (p.role === 'agent' && p.name === deps.hostId);
  const handlers: grpc.UntypedServiceImplementation = {
    GetHealth: kit.unary('GetHealth', readers, async () => deps.health()),
    GetHostFacts: kit.unary('GetHostFacts', readers, async () => ({ facts: factsToWire(deps.facts()) })),
  };
  return { name: AGENT_SERVICE, handlers };
}

// The hosts this agent may hand a VM's address over to in a VM switchover: those it replicates the
// VM's memory to (a VM switchover's destination holds a memory shadow). Their hand-over channels
// are kept connected ahead: setting one up when the switchover is prepared (TLS handshake and
// HTTP/2 set-up between two agents busy replicating) took 20-120 ms in the lab, all of it in the
// operator's command-to-running time.
import { AGENT_MODULE_NAMES, moduleApi, type RunningAgentModule } from '../agent-module';

export interface HandOverPeer {
  hostId: string;
  endpoint: string;
}

interface ReplicationSourcesProvider {
  sources(): Array<{ endpoints: Record<string, string> }>;
}

/** Every (host, endpoint) some VM's memory is replicated to from here, once each (the last endpoint seen wins). */
export function replicationPeers(sources: ReadonlyArray<{ endpoints: Record<string, string> }>): HandOverPeer[] {
  const byHost = new Map<string, string>();
  for (const s of sources) for (const [hostId, endpoint] of Object.entries(s.endpoints)) byHost.set(hostId, endpoint);
  return [...byHost].map(([hostId, endpoint]) => ({ hostId, endpoint }));
}

/** Looked up at call time in the running modules (no replication module: no peers). */
export function handOverPeerSource(modules: ReadonlyMap<string, RunningAgentModule>): () => HandOverPeer[] {
  return () => replicationPeers(moduleApi<ReplicationSourcesProvider>(modules, AGENT_MODULE_NAMES.replication, 'sources')?.sources() ?? []);
}

/**
 * Calls `connect` for every peer `peers()` names every `intervalMs` (connect is expected
 * to be idempotent: a connected channel stays as it is, an idle one reconnects).
 */
export function keepPeersConnected(peers: () => HandOverPeer[], connect: (p: HandOverPeer) => void, intervalMs: number): { stop(): void } {
  const tick = () => {
    for (const p of peers()) {
      try {
        connect(p);
      } catch {
        // Best effort: a peer that cannot be dialed fails the switchover's prepare, which says why.
      }
    }
  };
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

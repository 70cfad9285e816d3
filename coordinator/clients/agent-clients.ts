// Channels from the coordinator to agents, one per (host, service), dialled at the endpoint the
// agent registered and accepting only that agent's identity. Re-dialled when the endpoint changes.
import type * as grpc from '@grpc/grpc-js';
import { dial, type GenericClient } from '../../shared/grpc-client';
import { channelCredentials, type TlsMaterial } from '../../shared/tls';
import type { HostRegistry } from '../core/host-registry';

export class AgentClients {
  private readonly clients = new Map<string, { endpoint: string; client: GenericClient }>();

  constructor(
    private readonly registry: HostRegistry,
    private readonly tls: TlsMaterial,
    private readonly maxReceiveBytes?: number,
  ) {}

  /** The endpoint host `hostId` registered (for an agent that dials another); NOT_FOUND when unknown. */
  endpoint(hostId: string): string {
    return this.registry.get(hostId).facts.agent_endpoint;
  }

  /** A client for `service` on host `hostId`; NOT_FOUND when the host is unknown. */
  get(hostId: string, service: string): GenericClient {
    const endpoint = this.registry.get(hostId).facts.agent_endpoint;
    const key = `${hostId}\u0000${service}`;
    const existing = this.clients.get(key);
    if (existing && existing.endpoint === endpoint) return existing.client;
    existing?.client.close();
    const credentials: grpc.ChannelCredentials = channelCredentials(this.tls, { role: 'agent', name: hostId });
    const client = dial(service, endpoint, credentials, this.maxReceiveBytes);
    this.clients.set(key, { endpoint, client });
    return client;
  }

  close(): void {
    for (const { client } of this.clients.values()) client.close();
    this.clients.clear();
  }
}

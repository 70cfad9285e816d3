// CoordinatorPort over gRPC with mTLS: the agent's registration and heartbeat stream.
import type * as grpc from '@grpc/grpc-js';
import { fromServiceError } from '../../shared/grpc-status';
import { callUnary, dial, type GenericClient } from '../../shared/grpc-client';
import type { HostFacts, HostUsage } from '../../shared/host-types';
import { factsToWire, usageToWire } from '../../coordinator/api/host-messages';
import type { CoordinatorPort, HeartbeatStream } from '../core/coordinator-link';

const SERVICE = 'umbra.coordinator.v1.CoordinatorService';
const REGISTER_DEADLINE_MS = 5000;

export class GrpcCoordinatorPort implements CoordinatorPort {
  private readonly client: GenericClient;

  constructor(endpoint: string, credentials: grpc.ChannelCredentials) {
    this.client = dial(SERVICE, endpoint, credentials);
  }

  async register(facts: HostFacts): Promise<{ heartbeatIntervalMs: number }> {
    const res = await callUnary<{ heartbeat_interval_ms: number }>(this.client, 'RegisterHost', { facts: factsToWire(facts) }, REGISTER_DEADLINE_MS);
    return { heartbeatIntervalMs: res.heartbeat_interval_ms };
  }

  openHeartbeats(hostId: string): HeartbeatStream {
    let settle!: { resolve: () => void; reject: (e: unknown) => void };
    const closed = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    const call = (this.client.ReportHeartbeats as (cb: (err: grpc.ServiceError | null) => void) => grpc.ClientWritableStream<unknown>).call(
      this.client,
      (err: grpc.ServiceError | null) => (err ? settle.reject(fromServiceError(err)) : settle.resolve()),
    );
    call.on('error', () => undefined); // reported through the callback above
    return {
      closed,
      send: (usage: HostUsage, sequence: number) => {
        call.write({ host_id: hostId, sequence: String(sequence), sent_at_unix_ms: String(Date.now()), usage: usageToWire(usage) });
      },
      cancel: () => call.cancel(),
    };
  }

  close(): void {
    this.client.close();
  }
}

// The peer for coordinator-load: the same CoordinatorService contract served by bare grpc-js
// with the same mTLS and the same response shapes, but no identity checks, validation,
// persistence or liveness - the floor any implementation of this API pays.
import * as grpc from '@grpc/grpc-js';
import { basicView, hostToWire } from '../../coordinator/api/host-messages';
import { serviceDefinition } from '../../shared/proto';
import { EMPTY_USAGE, type HostRecord } from '../../shared/host-types';
import { loadTlsMaterial, serverCredentials } from '../../shared/tls';

const [listen, ca, cert, key] = process.argv.slice(2);
const hosts = new Map<string, HostRecord>();

type Msg = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const server = new grpc.Server();
server.addService(serviceDefinition('umbra.coordinator.v1.CoordinatorService'), {
  RegisterHost: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
    const f = call.request.facts;
    const now = Date.now();
    const rec: HostRecord = { facts: { ...f, capacity: { ...f.capacity, memory_bytes: Number(f.capacity.memory_bytes), nics: [] } }, state: 'HOST_STATE_UP', registered_at_unix_ms: now, last_heartbeat_unix_ms: now, state_changed_at_unix_ms: now, usage: EMPTY_USAGE };
    hosts.set(f.host_id, rec);
    cb(null, { host: hostToWire(rec), heartbeat_interval_ms: 1000 });
  },
  ReportHeartbeats: (call: grpc.ServerReadableStream<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
    call.on('data', (m: Msg) => {
      const h = hosts.get(m.host_id);
      if (h) {
        h.last_heartbeat_unix_ms = Date.now();
        h.usage = { cpu_load_ratio: m.usage.cpu_load_ratio, memory_used_bytes: Number(m.usage.memory_used_bytes), memory_available_bytes: Number(m.usage.memory_available_bytes) };
      }
    });
    call.on('end', () => cb(null, { accepted: '0' }));
  },
  ListHosts: (_call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
    cb(null, { hosts: [...hosts.values()].map((h) => basicView(hostToWire(h))) });
  },
});
server.bindAsync(listen, serverCredentials(loadTlsMaterial({ ca, cert, key })), (err, port) => {
  if (err) {
    console.error(err);
    process.exit(1);
  }
  console.log(`listening ${port}`);
});

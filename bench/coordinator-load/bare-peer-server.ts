// The peer for coordinator-load: the same CoordinatorService contract on the same server stack
// (startGrpcServer: grpc-js, mTLS, a cached answer encoded and framed once) with the same response
// shapes and freshness (the host list rebuilt at most every HOST_LIST_MAX_AGE_MS, or when a host
// registers), but no identity checks, validation, persistence or liveness: the floor of this API
// on this stack, so the gap to it is what the coordinator's own work costs.
// Stock grpc-js encodes every answer anew: for 200 hosts that took about 2.5 ms of CPU per call
// (p50 2.7 ms at 100 calls/s), so at 1,000 calls/s on 2 cores such a server falls behind without
// bound (every call past its 10 s deadline) and measures only its own queue.
import type * as grpc from '@grpc/grpc-js';
import { basicView, hostToWire } from '../../coordinator/api/host-messages';
import { HOST_LIST_MAX_AGE_MS } from '../../coordinator/api/host-list-cache';
import { startGrpcServer } from '../../shared/grpc-server';
import { EMPTY_USAGE, type HostRecord } from '../../shared/host-types';
import { loadTlsMaterial, serverCredentials } from '../../shared/tls';

const [listen, ca, cert, key] = process.argv.slice(2);
const hosts = new Map<string, HostRecord>();
let listAnswer: { builtAtMs: number; response: Msg } | undefined;

type Msg = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const handlers = {
  RegisterHost: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
    const f = call.request.facts;
    const now = Date.now();
    const rec: HostRecord = { facts: { ...f, capacity: { ...f.capacity, memory_bytes: Number(f.capacity.memory_bytes), nics: [] } }, state: 'HOST_STATE_UP', registered_at_unix_ms: now, last_heartbeat_unix_ms: now, state_changed_at_unix_ms: now, usage: EMPTY_USAGE };
    hosts.set(f.host_id, rec);
    listAnswer = undefined;
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
    const now = Date.now();
    if (!listAnswer || now - listAnswer.builtAtMs >= HOST_LIST_MAX_AGE_MS) {
      listAnswer = { builtAtMs: now, response: { hosts: [...hosts.values()].map((h) => basicView(hostToWire(h))) } };
    }
    cb(null, listAnswer.response);
  },
};

startGrpcServer({ listen, credentials: serverCredentials(loadTlsMaterial({ ca, cert, key })), services: [{ name: 'umbra.coordinator.v1.CoordinatorService', handlers }] }).then(
  (s) => console.log(`listening ${s.port}`),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);

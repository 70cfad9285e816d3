// Starts a gRPC server the way both programs need it: mTLS, message size caps, the standard
// health service (grpc.health.v1) and server reflection beside our own services.
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import { ReflectionService } from '@grpc/reflection';
import { UmbraError } from './errors';
import { installFrameReuse, markReusable } from './grpc-frame-reuse';
import { packageDefinition, serviceDefinition } from './proto';

/** Requests larger than this are refused with RESOURCE_EXHAUSTED before any handler runs. */
export const DEFAULT_MAX_RECEIVE_BYTES = 4 * 1024 * 1024;

export interface ServiceBinding {
  /** Full name, e.g. `umbra.agent.v1.AgentService`. */
  name: string;
  handlers: grpc.UntypedServiceImplementation;
}

export interface RunningServer {
  server: grpc.Server;
  port: number;
  setServing(service: string, status: ServingStatus): void;
  close(graceMs?: number): Promise<void>;
}

export async function startGrpcServer(opts: {
  listen: string;
  credentials: grpc.ServerCredentials;
  services: ServiceBinding[];
  maxReceiveBytes?: number;
}): Promise<RunningServer> {
  const maxReceive = opts.maxReceiveBytes ?? DEFAULT_MAX_RECEIVE_BYTES;
  const server = new grpc.Server({
    'grpc.max_receive_message_length': maxReceive,
    'grpc.max_send_message_length': maxReceive,
    // Detect dead peers on long-lived streams (heartbeats, watches) within seconds.
    'grpc.keepalive_time_ms': 10_000,
    'grpc.keepalive_timeout_ms': 5_000,
    'grpc.keepalive_permit_without_calls': 1,
    // No channelz service is served; its per-call bookkeeping is skipped.
    'grpc.enable_channelz': 0,
  });
  const health = new HealthImplementation({ '': 'SERVING' });
  health.addToServer(server);
  new ReflectionService(packageDefinition()).addToServer(server);
  for (const s of opts.services) {
    server.addService(withSerializeReuse(serviceDefinition(s.name)), s.handlers);
    health.setStatus(s.name, 'SERVING');
  }
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(opts.listen, opts.credentials, (err, p) =>
      err ? reject(new UmbraError('UNAVAILABLE', `cannot listen on ${opts.listen}: ${err.message}`, { cause: err })) : resolve(p),
    ),
  );
  return {
    server,
    port,
    setServing: (service, status) => health.setStatus(service, status),
    close: (graceMs = 2000) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.forceShutdown(), graceMs);
        timer.unref();
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}

/**
 * Lets a handler that returns the very same response object again (a cached answer) skip its
 * encoding: bytes are remembered per object, for unary methods, and forgotten with the object.
 * Those bytes are also framed only once (grpc-frame-reuse), not copied into a new buffer per call.
 */
function withSerializeReuse(def: grpc.ServiceDefinition): grpc.ServiceDefinition {
  installFrameReuse();
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(def)) {
    if (method.requestStream || method.responseStream) {
      out[name] = method;
      continue;
    }
    const encoded = new WeakMap<object, Buffer>();
    const serialize = method.responseSerialize;
    out[name] = {
      ...method,
      responseSerialize: (value: unknown) => {
        if (typeof value !== 'object' || value === null) return serialize(value);
        let bytes = encoded.get(value);
        if (!bytes) {
          bytes = serialize(value);
          encoded.set(value, bytes);
        } else {
          // Sent a second time: worth keeping its frame too (one-off answers are not kept).
          markReusable(bytes);
        }
        return bytes;
      },
    };
  }
  return out as grpc.ServiceDefinition;
}

/**
 * What a client lets a server send before reading it (HTTP/2 flow control, per connection and per
 * stream). HTTP/2's default of 64 KiB holds two ListHosts answers of a 200-host cluster: with a
 * client's event loop busy for a few milliseconds the server then waits for WINDOW_UPDATEs,
 * answers queue up in its memory, and under coordinator-load the run collapsed (17,048 of 20,000
 * calls past their 10 s deadline; 0 with a 8 MiB window in the next run, same load).
 */
export const FLOW_CONTROL_WINDOW_BYTES = 4 * 1024 * 1024;

/** Client channel options matching the server's caps. */
export function channelOptions(maxReceiveBytes = DEFAULT_MAX_RECEIVE_BYTES): grpc.ChannelOptions {
  return {
    'grpc.max_receive_message_length': maxReceiveBytes,
    'grpc.max_send_message_length': maxReceiveBytes,
    'grpc.keepalive_time_ms': 10_000,
    'grpc.keepalive_timeout_ms': 5_000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc-node.flow_control_window': FLOW_CONTROL_WINDOW_BYTES,
    // Identities are checked from the URI SAN, not host names; a fixed SNI name also avoids
    // sending an IP address as ServerName (RFC 6066).
    'grpc.ssl_target_name_override': 'umbra',
    // Our reconnect policy is explicit (backoff in the callers), not grpc-js's default.
    'grpc.initial_reconnect_backoff_ms': 200,
    'grpc.max_reconnect_backoff_ms': 5_000,
    // As on the server: no channelz service is served, so channels keep no trace of their state
    // changes (a coordinator holds a channel per agent, and one that cannot connect logs each retry).
    'grpc.enable_channelz': 0,
  };
}

// Prometheus text endpoint (GET /metrics) for a registry, bound to the configured address.
import http from 'node:http';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { UmbraError } from './errors';
import { splitHostPort } from './host-port';

const EVENT_LOOP_MONITOR_MS = 100;

export function createRegistry(prefix: string): Registry {
  const registry = new Registry();
  // prom-client samples event-loop delay with a libuv timer at this period; its default (10 ms)
  // wakes an idle daemon 100 times a second, about 0.6% of a core here. A stall still delays the
  // next tick and shows in the histogram; short stalls are sampled less often.
  collectDefaultMetrics({ register: registry, prefix, eventLoopMonitoringPrecision: EVENT_LOOP_MONITOR_MS });
  return registry;
}

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

export async function startMetricsServer(listen: string, registry: Registry): Promise<MetricsServer> {
  const { host, port } = splitHostPort(listen);
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url !== '/metrics' && req.url !== '/')) {
      res.writeHead(404).end('not found\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err) => res.writeHead(500).end(`metrics failed: ${(err as Error).message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new UmbraError('UNAVAILABLE', `cannot serve metrics on ${listen}: ${err.message}`, { cause: err })));
    server.listen(port, host, () => resolve());
  });
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

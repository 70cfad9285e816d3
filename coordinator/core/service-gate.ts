// Lets the coordinator's gRPC server listen before every capability module has started (the
// switchover module's recovery runs in its start): agents reconnect, register and heartbeat while
// the modules recover, and the modules' services answer UNAVAILABLE until all of them are ready.
// Each gated service is bound at start with forwarding handlers; open() installs the real ones.
import type * as grpc from '@grpc/grpc-js';
import { UmbraError, UnavailableError } from '../../shared/errors';
import type { ServiceBinding } from '../../shared/grpc-server';
import { packageDefinition } from '../../shared/proto';
import { toServiceError } from '../../shared/grpc-status';

type AnyHandler = (call: unknown, callback?: (err: unknown, value?: unknown) => void) => void;

interface MethodShape {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
}

/** Methods of a service by name, as the proto package defines it (empty for an unknown name). */
function methodsOf(serviceName: string): Record<string, MethodShape> {
  const def = packageDefinition()[serviceName] as unknown as Record<string, MethodShape> | undefined;
  if (!def || typeof def !== 'object') return {};
  const out: Record<string, MethodShape> = {};
  for (const [name, m] of Object.entries(def)) if (m && typeof m === 'object' && typeof m.path === 'string') out[name] = m;
  return out;
}

/** Services defined under `packagePrefix` (e.g. `umbra.coordinator.v1.`), sorted. */
export function servicesInPackage(packagePrefix: string): string[] {
  return Object.keys(packageDefinition())
    .filter((k) => k.startsWith(packagePrefix) && Object.keys(methodsOf(k)).length > 0)
    .sort();
}

export class ServiceGate {
  private readonly real = new Map<string, grpc.UntypedServiceImplementation>();
  private opened = false;

  /** `notReady`: why a call is refused before open() (said in the UNAVAILABLE details). */
  constructor(
    readonly serviceNames: readonly string[],
    private readonly notReady: string,
  ) {}

  get isOpen(): boolean {
    return this.opened;
  }

  /** Forwarding bindings, one per gated service, to serve from the start. */
  bindings(): ServiceBinding[] {
    return this.serviceNames.map((name) => {
      const handlers: grpc.UntypedServiceImplementation = {};
      for (const [method, shape] of Object.entries(methodsOf(name))) {
        const target = () => this.real.get(name)?.[method] as unknown as AnyHandler | undefined;
        const refusal = () => {
          const err = this.opened
            ? new UmbraError('UNIMPLEMENTED', `${name} is not served by this coordinator (its module is not running)`)
            : new UnavailableError(`${name}.${method} is not ready: ${this.notReady}; retry shortly`);
          return toServiceError(err);
        };
        const handler: AnyHandler = shape.responseStream
          ? (call) => {
              const h = target();
              if (h) return h(call);
              (call as { emit(ev: string, e: unknown): void }).emit('error', refusal());
            }
          : (call, callback) => {
              const h = target();
              if (h) return h(call, callback);
              callback!(refusal());
            };
        handlers[method] = handler as unknown as grpc.UntypedHandleCall;
      }
      return { name, handlers };
    });
  }

  /**
   * Installs the real handlers of the services given (others stay refused, as UNIMPLEMENTED from
   * now on) and lets calls through. A binding for a service not gated here is returned, to be
   * served directly.
   */
  open(services: readonly ServiceBinding[]): ServiceBinding[] {
    const direct: ServiceBinding[] = [];
    for (const s of services) {
      if (this.serviceNames.includes(s.name)) this.real.set(s.name, s.handlers);
      else direct.push(s);
    }
    this.opened = true;
    return direct;
  }
}

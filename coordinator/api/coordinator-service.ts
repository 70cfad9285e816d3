// gRPC handlers of umbra.coordinator.v1.CoordinatorService: decode, check identity, call the
// registry or event log, encode. Agents may only register and report for their own host id.
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { InvalidArgumentError, PermissionDeniedError } from '../../shared/errors';
import { HandlerKit } from '../../shared/grpc-handlers';
import type { ServiceBinding } from '../../shared/grpc-server';
import { requireHostId, toSafeInteger } from '../../shared/validate';
import type { EventLog } from '../core/event-log';
import type { HostRegistry } from '../core/host-registry';
import { eventToWire, hostToWire, parseHostFacts, parseHostStates, parseHostView, parseUsage } from './host-messages';
import { HostListCache } from './host-list-cache';

export const COORDINATOR_SERVICE = 'umbra.coordinator.v1.CoordinatorService';
const DEFAULT_EVENT_LIMIT = 100;
const MAX_EVENT_LIMIT = 1000;

type Msg = Record<string, unknown>;

export function coordinatorService(deps: {
  registry: HostRegistry;
  events: EventLog;
  heartbeatIntervalMs: number;
  logger: Logger;
}): ServiceBinding {
  const kit = new HandlerKit(deps.logger);
  const readers = ['operator', 'coordinator', 'agent'] as const;
  const hostList = new HostListCache(deps.registry);

  const handlers: grpc.UntypedServiceImplementation = {
    RegisterHost: kit.unary<Msg, Msg>('RegisterHost', ['agent'], async (req, ctx) => {
      const facts = parseHostFacts(req.facts);
      if (facts.host_id !== ctx.peer.name) {
        throw new PermissionDeniedError(`agent/${ctx.peer.name} may not register host '${facts.host_id}'`);
      }
      const record = await deps.registry.register(facts);
      deps.logger.info({ hostId: facts.host_id, endpoint: facts.agent_endpoint }, 'host registered');
      return { host: hostToWire(record), heartbeat_interval_ms: deps.heartbeatIntervalMs };
    }),

    ReportHeartbeats: kit.clientStream<Msg, Msg>('ReportHeartbeats', ['agent'], async (call, ctx) => {
      let accepted = 0;
      for await (const msg of call as AsyncIterable<Msg>) {
        const hostId = requireHostId('host_id', msg.host_id);
        if (hostId !== ctx.peer.name) throw new PermissionDeniedError(`agent/${ctx.peer.name} may not report for host '${hostId}'`);
        await deps.registry.heartbeat(hostId, parseUsage(msg.usage));
        accepted++;
      }
      return { accepted: String(accepted) };
    }),

    ListHosts: kit.unary<Msg, Msg>('ListHosts', readers, async (req) => hostList.get(parseHostStates(req.states), parseHostView(req.view))),

    GetHost: kit.unary<Msg, Msg>('GetHost', readers, async (req) => {
      const hostId = requireHostId('host_id', req.host_id);
      return { host: hostToWire(deps.registry.get(hostId), deps.registry.awaitingContact(hostId)) };
    }),

    RemoveHost: kit.unary<Msg, Msg>('RemoveHost', ['operator'], async (req) => {
      await deps.registry.remove(requireHostId('host_id', req.host_id));
      return {};
    }),

    ListEvents: kit.unary<Msg, Msg>('ListEvents', ['operator', 'coordinator'], async (req) => {
      const after = toSafeInteger('after_sequence', req.after_sequence ?? 0, { min: 0 });
      const limitRaw = toSafeInteger('limit', req.limit ?? 0, { min: 0 });
      if (limitRaw > MAX_EVENT_LIMIT) throw new InvalidArgumentError('limit', `must be at most ${MAX_EVENT_LIMIT}`);
      const events = await deps.events.list(after, limitRaw || DEFAULT_EVENT_LIMIT);
      return { events: events.map(eventToWire) };
    }),

    WatchEvents: kit.serverStream<Msg, Msg>('WatchEvents', ['operator', 'coordinator'], async (req, call, ctx) => {
      let after = toSafeInteger('after_sequence', req.after_sequence ?? 0, { min: 0 });
      if (!req.from_start && after === 0) after = deps.events.last;
      // Subscribe first, then replay: events that land during the replay are queued, not lost.
      const queued: Msg[] = [];
      let replaying = true;
      let lastSent = after;
      const send = (e: ReturnType<typeof eventToWire>) => {
        if (Number(e.sequence) <= lastSent) return;
        lastSent = Number(e.sequence);
        call.write({ event: e });
      };
      const unsubscribe = deps.events.subscribe((e) => {
        const wire = eventToWire(e);
        if (replaying) queued.push(wire);
        else send(wire);
      });
      try {
        for (;;) {
          const page = await deps.events.list(lastSent, MAX_EVENT_LIMIT);
          for (const e of page) send(eventToWire(e));
          if (page.length < MAX_EVENT_LIMIT) break;
        }
        replaying = false;
        for (const e of queued) send(e as ReturnType<typeof eventToWire>);
        await new Promise<void>((resolve) => {
          if (ctx.signal.aborted) return resolve();
          ctx.signal.addEventListener('abort', () => resolve(), { once: true });
          call.once('close', () => resolve());
        });
      } finally {
        unsubscribe();
      }
    }),
  };
  return { name: COORDINATOR_SERVICE, handlers };
}

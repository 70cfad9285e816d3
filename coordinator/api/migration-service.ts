// gRPC handlers of umbra.coordinator.v1.MigrationService: trigger (with or without a progress
// stream) and list switchovers. Decode, hand to the MigrationRoutes (full VM switchover for QEMU
// VMs, IP-only otherwise, "best" destination by rank), encode.
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { InvalidArgumentError } from '../../shared/errors';
import { HandlerKit } from '../../shared/grpc-handlers';
import type { ServiceBinding } from '../../shared/grpc-server';
import { requireHostId, requireVmId, toSafeInteger } from '../../shared/validate';
import type { IpSwitchover } from '../migrate/ip-switchover';
import type { SwitchoverEvent } from '../migrate/switchover-event';
import type { ChosenDestination } from '../switchover/best-destination';
import { MigrationRoutes, type MigrationProgress } from '../switchover/migration-routes';

export { MigrationRoutes, type VmSwitchoverRoute } from '../switchover/migration-routes';

export const MIGRATION_SERVICE = 'umbra.coordinator.v1.MigrationService';
const DEFAULT_LIST_LIMIT = 50;
const MAX_LIST_LIMIT = 1000;

type Msg = Record<string, unknown>;

export function switchoverToWire(e: SwitchoverEvent) {
  return { ...e, timestamp_unix_ms: String(e.timestamp_unix_ms), fencing_token: String(e.fencing_token) };
}

export function destinationToWire(d: ChosenDestination, sourceHost: string) {
  return { host_id: d.hostId, source_host: sourceHost, chosen_by_rank: d.chosenByRank, score: d.score, reasons: d.reasons };
}

export function stepUpdateToWire(p: MigrationProgress) {
  const ended = p.ok !== undefined;
  return {
    step: p.step,
    host_id: p.hostId,
    state: ended ? 'SWITCHOVER_STEP_STATE_ENDED' : 'SWITCHOVER_STEP_STATE_STARTED',
    ok: p.ok ?? false,
    duration_ms: p.durationMs ?? 0,
    error: p.error ?? '',
  };
}

/** vm_id, and destination_host: empty for "best", else a host id. */
function parseTrigger(req: Msg): { vmId: string; destination: string } {
  const vmId = requireVmId('vm_id', req.vm_id);
  if (req.destination_host !== undefined && typeof req.destination_host !== 'string') throw new InvalidArgumentError('destination_host', 'must be a string');
  const destination = req.destination_host ? requireHostId('destination_host', req.destination_host) : '';
  return { vmId, destination };
}

export type MigrationServiceBinding = ServiceBinding & { routes: MigrationRoutes };

export function migrationService(deps: { switchover: IpSwitchover; logger: Logger }): MigrationServiceBinding {
  const routes = new MigrationRoutes(deps.switchover);
  const kit = new HandlerKit(deps.logger);
  const handlers: grpc.UntypedServiceImplementation = {
    TriggerMigration: kit.unary<Msg, Msg>('TriggerMigration', ['operator', 'coordinator'], async (req) => {
      const { vmId, destination } = parseTrigger(req);
      let chosen: ReturnType<typeof destinationToWire> | undefined;
      const run = await routes.run(vmId, destination, { onDestination: (d, source) => (chosen = destinationToWire(d, source)) });
      return { switchover: switchoverToWire(run.event), destination: chosen };
    }),
    TriggerMigrationWatch: kit.serverStream<Msg, Msg>('TriggerMigrationWatch', ['operator', 'coordinator'], async (req, call) => {
      const { vmId, destination } = parseTrigger(req);
      // The switchover runs to its end even when the watcher leaves.
      const send = (m: Msg) => {
        if (!call.cancelled && call.writable) call.write(m);
      };
      const run = await routes.run(vmId, destination, {
        onDestination: (d, source) => send({ destination: destinationToWire(d, source) }),
        progress: (p) => send({ step: stepUpdateToWire(p) }),
      });
      send({ switchover: switchoverToWire(run.event) });
    }),
    ListMigrations: kit.unary<Msg, Msg>('ListMigrations', ['operator', 'coordinator'], async (req) => {
      const limit = toSafeInteger('limit', req.limit ?? 0, { min: 0, max: MAX_LIST_LIMIT }) || DEFAULT_LIST_LIMIT;
      return { switchovers: (await routes.list((req.vm_id as string) || undefined, limit)).map(switchoverToWire) };
    }),
  };
  return { name: MIGRATION_SERVICE, handlers, routes };
}

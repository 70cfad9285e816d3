// gRPC handlers of umbra.coordinator.v1.MigrationService: trigger and list IP switchovers (operators).
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { InvalidArgumentError } from '../../shared/errors';
import { HandlerKit } from '../../shared/grpc-handlers';
import type { ServiceBinding } from '../../shared/grpc-server';
import { requireHostId, toSafeInteger } from '../../shared/validate';
import type { IpSwitchover } from '../migrate/ip-switchover';
import type { SwitchoverEvent } from '../migrate/switchover-event';

export const MIGRATION_SERVICE = 'umbra.coordinator.v1.MigrationService';
const DEFAULT_LIST_LIMIT = 50;
const MAX_LIST_LIMIT = 1000;

type Msg = Record<string, unknown>;

export function switchoverToWire(e: SwitchoverEvent) {
  return { ...e, timestamp_unix_ms: String(e.timestamp_unix_ms), fencing_token: String(e.fencing_token) };
}

export function migrationService(deps: { switchover: IpSwitchover; logger: Logger }): ServiceBinding {
  const kit = new HandlerKit(deps.logger);
  const handlers: grpc.UntypedServiceImplementation = {
    TriggerMigration: kit.unary<Msg, Msg>('TriggerMigration', ['operator', 'coordinator'], async (req) => {
      if (typeof req.vm_id !== 'string' || req.vm_id === '') throw new InvalidArgumentError('vm_id', 'must be a non-empty string');
      const dest = requireHostId('destination_host', req.destination_host);
      return { switchover: switchoverToWire(await deps.switchover.trigger(req.vm_id, dest)) };
    }),
    ListMigrations: kit.unary<Msg, Msg>('ListMigrations', ['operator', 'coordinator'], async (req) => {
      const limit = toSafeInteger('limit', req.limit ?? 0, { min: 0, max: MAX_LIST_LIMIT }) || DEFAULT_LIST_LIMIT;
      return { switchovers: (await deps.switchover.list((req.vm_id as string) || undefined, limit)).map(switchoverToWire) };
    }),
  };
  return { name: MIGRATION_SERVICE, handlers };
}

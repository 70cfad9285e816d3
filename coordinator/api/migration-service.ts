// gRPC handlers of umbra.coordinator.v1.MigrationService: trigger and list switchovers (operators).
// A VM that runs as a QEMU VM takes the full VM switchover (installed by the `switchover` module
// through the binding's routes); other VMs take the IP-only switchover.
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

/** The full VM switchover, as the `switchover` coordinator module provides it. */
export interface VmSwitchoverRoute {
  /** True when `vmId` runs as a QEMU VM an agent drives. */
  handles(vmId: string): Promise<boolean>;
  trigger(vmId: string, destination: string): Promise<SwitchoverEvent>;
  list(vmId: string | undefined, limit: number): Promise<SwitchoverEvent[]>;
}

/** Which switchover a TriggerMigration takes; the VM route is installed after start. */
export class MigrationRoutes {
  private vmRoute?: VmSwitchoverRoute;
  constructor(readonly ip: IpSwitchover) {}
  installVmRoute(route: VmSwitchoverRoute): void {
    this.vmRoute = route;
  }
  async forVm(vmId: string): Promise<{ trigger(vmId: string, destination: string): Promise<SwitchoverEvent> }> {
    return this.vmRoute && (await this.vmRoute.handles(vmId)) ? this.vmRoute : this.ip;
  }
  async list(vmId: string | undefined, limit: number): Promise<SwitchoverEvent[]> {
    const all = [...(await this.ip.list(vmId, limit)), ...((await this.vmRoute?.list(vmId, limit)) ?? [])];
    return all.sort((a, b) => b.timestamp_unix_ms - a.timestamp_unix_ms).slice(0, limit);
  }
}

export type MigrationServiceBinding = ServiceBinding & { routes: MigrationRoutes };

export function migrationService(deps: { switchover: IpSwitchover; logger: Logger }): MigrationServiceBinding {
  const routes = new MigrationRoutes(deps.switchover);
  const kit = new HandlerKit(deps.logger);
  const handlers: grpc.UntypedServiceImplementation = {
    TriggerMigration: kit.unary<Msg, Msg>('TriggerMigration', ['operator', 'coordinator'], async (req) => {
      if (typeof req.vm_id !== 'string' || req.vm_id === '') throw new InvalidArgumentError('vm_id', 'must be a non-empty string');
      const dest = requireHostId('destination_host', req.destination_host);
      return { switchover: switchoverToWire(await (await routes.forVm(req.vm_id)).trigger(req.vm_id, dest)) };
    }),
    ListMigrations: kit.unary<Msg, Msg>('ListMigrations', ['operator', 'coordinator'], async (req) => {
      const limit = toSafeInteger('limit', req.limit ?? 0, { min: 0, max: MAX_LIST_LIMIT }) || DEFAULT_LIST_LIMIT;
      return { switchovers: (await routes.list((req.vm_id as string) || undefined, limit)).map(switchoverToWire) };
    }),
  };
  return { name: MIGRATION_SERVICE, handlers, routes };
}

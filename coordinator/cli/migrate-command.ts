// `umbractl migrate VM [--to HOST|best]`: switches the VM over (TriggerMigrationWatch), printing the
// destination, each step as it starts and ends, then the step timings; --json prints the outcome
// (the SwitchoverEvent, plus `chosen_destination`).
import type * as grpc from '@grpc/grpc-js';
import { deadline, type GenericClient } from '../../shared/grpc-client';
import { fromServiceError } from '../../shared/grpc-status';
import { UmbraError } from '../../shared/errors';
import type { CtlConnection } from './ctl-connection';
import { formatDestination, formatOutcome, formatStepUpdate, type WireDestination, type WireStepUpdate, type WireSwitchover } from './migrate-progress';
import { dialCoordinatorService } from './shadows-command';

const MIGRATION_SERVICE = 'umbra.coordinator.v1.MigrationService';
/** A switchover is bounded by its steps' timeouts; this only stops a client waiting forever. */
const WATCH_DEADLINE_MS = 5 * 60_000;
/** `--to best` (or no --to): the coordinator picks the destination. */
export const BEST_DESTINATION = 'best';

type WatchMessage = { update?: string; destination?: WireDestination; step?: WireStepUpdate; switchover?: WireSwitchover };

export interface MigrationWatchHandlers {
  destination?: (d: WireDestination) => void;
  step?: (u: WireStepUpdate) => void;
}

/** Runs TriggerMigrationWatch to its end; resolves with the outcome, rejects with the refusal (UmbraError). */
export function watchMigration(
  client: GenericClient,
  vmId: string,
  destination: string,
  on: MigrationWatchHandlers = {},
): Promise<{ destination?: WireDestination; switchover: WireSwitchover }> {
  const call = (client.TriggerMigrationWatch as (req: unknown, opts: grpc.CallOptions) => grpc.ClientReadableStream<WatchMessage>).call(
    client,
    { vm_id: vmId, destination_host: destination },
    { deadline: deadline(WATCH_DEADLINE_MS) },
  );
  return new Promise((resolve, reject) => {
    let chosen: WireDestination | undefined;
    let outcome: WireSwitchover | undefined;
    call.on('data', (m: WatchMessage) => {
      if (m.destination) {
        chosen = m.destination;
        on.destination?.(chosen);
      }
      else if (m.step) on.step?.(m.step);
      else if (m.switchover) outcome = m.switchover;
    });
    call.on('error', (err) => reject(fromServiceError(err)));
    call.on('end', () => (outcome ? resolve({ destination: chosen, switchover: outcome }) : reject(new UmbraError('INTERNAL', 'the coordinator ended the migration stream without an outcome'))));
  });
}

export async function runMigrateCommand(
  conn: CtlConnection,
  vmId: string,
  to: string | undefined,
  opts: { json: boolean; write?: (s: string) => void },
): Promise<number> {
  const write = opts.write ?? ((s: string) => void process.stdout.write(s));
  const destination = !to || to === BEST_DESTINATION ? '' : to;
  const client = dialCoordinatorService(conn, MIGRATION_SERVICE);
  try {
    if (!opts.json) write(destination ? `switching ${vmId} to ${destination}...\n` : `switching ${vmId} to the best destination...\n`);
    const res = await watchMigration(client, vmId, destination, opts.json ? {} : {
      destination: (d) => write(formatDestination(vmId, d) + '\n'),
      step: (u) => write(formatStepUpdate(u) + '\n'),
    });
    // --json: the SwitchoverEvent as TriggerMigration returns it, with where it went and why.
    write(opts.json ? JSON.stringify({ ...res.switchover, chosen_destination: res.destination ?? null }, null, 2) + '\n' : formatOutcome(res.switchover).join('\n') + '\n');
    return res.switchover.status === 'SUCCEEDED' ? 0 : 1;
  } finally {
    client.close();
  }
}

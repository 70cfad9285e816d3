// `umbractl migrate VM --to HOST`: switches the VM's IP to HOST (TriggerMigration) and prints each step.
import { callUnary } from '../../shared/grpc-client';
import type { switchoverToWire } from '../api/migration-service';
import type { CtlConnection } from './ctl-connection';
import { dialCoordinatorService } from './shadows-command';

const MIGRATION_SERVICE = 'umbra.coordinator.v1.MigrationService';
const TRIGGER_DEADLINE_MS = 30_000;

export async function runMigrateCommand(conn: CtlConnection, vmId: string, destination: string, opts: { json: boolean }): Promise<number> {
  const client = dialCoordinatorService(conn, MIGRATION_SERVICE);
  if (!opts.json) process.stdout.write(`switching ${vmId} to ${destination}...\n`);
  const { switchover: s } = await callUnary<{ switchover: ReturnType<typeof switchoverToWire> }>(
    client,
    'TriggerMigration',
    { vm_id: vmId, destination_host: destination },
    TRIGGER_DEADLINE_MS,
  );
  if (opts.json) {
    process.stdout.write(JSON.stringify(s, null, 2) + '\n');
  } else {
    for (const st of s.steps) process.stdout.write(`  ${st.step.padEnd(20)} ${st.host_id.padEnd(16)} ${st.duration_ms.toFixed(2).padStart(9)} ms  ${st.ok ? 'ok' : `FAILED: ${st.error}`}\n`);
    process.stdout.write(`${s.status}: ${s.source_host} -> ${s.destination_host}, fencing token ${s.fencing_token}, ${s.total_ms.toFixed(2)} ms${s.error ? ` (${s.error})` : ''}\n`);
  }
  return s.status === 'SUCCEEDED' ? 0 : 1;
}

// An operator's TriggerMigration with timestamps, run inside the coordinator's namespace: dials the
// coordinator's MigrationService with the given identity and waits for the channel (so the TLS
// set-up is not counted), prints {"ready":true}, then on "go" (stdin) calls TriggerMigrationWatch
// (what `umbractl migrate` calls) until the coordinator accepts it (a refusal is retried every
// RETRY_MS; each refusal is printed), and prints one JSON line: the accepted call's start, every
// update's arrival (monotonic ms, the clock every process shares, as the UDP prober's) and the
// final SwitchoverEvent. It then stays until its stdin closes: the caller ends it after its own
// measurement, because a Node.js process exiting stalls this test machine's vCPUs for 6-9 ms
// (freeing its memory) some 20-30 ms later, which a client probing every millisecond counted as
// the switchover's (ip-switchover: the second gap moved 300 ms later when the exit did).
// Usage: node trigger-migration-cli.js ENDPOINT CA CERT KEY VM DESTINATION [TIMEOUT_MS]
import { createInterface } from 'node:readline';
import { dial } from '../../shared/grpc-client';
import { channelCredentials, loadTlsMaterial } from '../../shared/tls';
import { watchMigration } from '../../coordinator/cli/migrate-command';
import type { WireSwitchover } from '../../coordinator/cli/migrate-progress';
import { UmbraError } from '../../shared/errors';

const RETRY_MS = 1000;

export interface TriggerUpdate {
  atMs: number;
  step: string;
  hostId: string;
  state: string;
  durationMs?: number;
  ok?: boolean;
}

export interface TriggerReport {
  ok: boolean;
  /** Monotonic ms when the accepted TriggerMigrationWatch call was made. */
  calledAtMs: number;
  /** When the destination message arrived (the coordinator accepted the switchover). */
  acceptedAtMs: number;
  endedAtMs: number;
  refusals: number;
  lastRefusal: string;
  updates: TriggerUpdate[];
  switchover?: WireSwitchover;
  error?: string;
}

const monoMs = (): number => Number(process.hrtime.bigint()) / 1e6;

async function main(): Promise<void> {
  const [endpoint, ca, cert, key, vm, destination, timeoutArg] = process.argv.slice(2);
  const timeoutMs = Number(timeoutArg ?? 120000);
  const client = dial('umbra.coordinator.v1.MigrationService', endpoint, channelCredentials(loadTlsMaterial({ ca, cert, key }), { role: 'coordinator' }));
  await new Promise<void>((resolve, reject) => client.waitForReady(new Date(Date.now() + 15000), (err?: Error) => (err ? reject(err) : resolve())));
  process.stdout.write(JSON.stringify({ ready: true }) + '\n');
  const input = createInterface({ input: process.stdin });
  const stdinClosed = new Promise<void>((resolve) => input.once('close', resolve));
  const go = await Promise.race([new Promise<boolean>((resolve) => input.on('line', (l) => l.trim() === 'go' && resolve(true))), stdinClosed.then(() => false)]);
  if (!go) {
    client.close();
    return;
  }
  const deadlineAt = monoMs() + timeoutMs;
  const report: TriggerReport = { ok: false, calledAtMs: 0, acceptedAtMs: 0, endedAtMs: 0, refusals: 0, lastRefusal: '', updates: [] };
  for (;;) {
    report.updates = [];
    report.calledAtMs = monoMs();
    try {
      const res = await watchMigration(client, vm, destination, {
        destination: () => (report.acceptedAtMs = monoMs()),
        step: (u) => report.updates.push({ atMs: monoMs(), step: u.step, hostId: u.host_id, state: u.state, durationMs: u.duration_ms, ok: u.ok }),
      });
      report.endedAtMs = monoMs();
      report.switchover = res.switchover;
      report.ok = res.switchover.status === 'SUCCEEDED';
      break;
    } catch (err) {
      const refused = err instanceof UmbraError && err.reason === 'FAILED_PRECONDITION';
      if (!refused || monoMs() > deadlineAt) {
        report.error = (err as Error).message;
        break;
      }
      report.refusals++;
      report.lastRefusal = (err as Error).message;
      await new Promise((r) => setTimeout(r, RETRY_MS));
    }
  }
  process.stdout.write(JSON.stringify(report) + '\n');
  await stdinClosed;
  client.close();
}

main().catch((err) => {
  process.stdout.write(JSON.stringify({ ok: false, error: String((err as Error)?.message ?? err) }) + '\n');
  process.exitCode = 1;
});

// TriggerMigrationWatch through a real gRPC server (mTLS, loopback) and umbractl's migrate code:
// the destination first, steps streamed while the switchover runs, the outcome last; refusals and
// bad requests end the stream with their status; TriggerMigration (unary) reports the destination.
import test from 'ava';
import { migrationService } from '../../../coordinator/api/migration-service';
import { runMigrateCommand, watchMigration } from '../../../coordinator/cli/migrate-command';
import { dialCoordinatorService } from '../../../coordinator/cli/shadows-command';
import type { IpSwitchover } from '../../../coordinator/migrate/ip-switchover';
import type { SwitchoverEvent } from '../../../coordinator/migrate/switchover-event';
import type { MigrationProgress } from '../../../coordinator/switchover/migration-routes';
import { UmbraError } from '../../../shared/errors';
import { callUnary } from '../../../shared/grpc-client';
import { startGrpcServer, type RunningServer } from '../../../shared/grpc-server';
import { silentLogger } from '../../../shared/log';
import { loadTlsMaterial, serverCredentials } from '../../../shared/tls';
import { createPkiFixture, type PkiFixture } from '../../helpers/pki-fixture';

const SERVICE = 'umbra.coordinator.v1.MigrationService';
const STEPS = ['pause-source', 'flush-memory', 'migrate-device-state', 'resume-destination', 'switch-ip', 'stop-source-replication'];

let pki: PkiFixture;
let server: RunningServer;
let gate: { wait?: Promise<void>; open?: () => void } = {};
const ready = new Set(['hv-b', 'hv-c']);

function event(vmId: string, dest: string, steps: SwitchoverEvent['steps']): SwitchoverEvent {
  return { id: 'sw1', timestamp_unix_ms: 1, vm_id: vmId, source_host: 'hv-a', destination_host: dest, status: 'SUCCEEDED', fencing_token: 7, steps, total_ms: 3.25, error: '' };
}

test.before(async () => {
  pki = await createPkiFixture([]);
  const ip = {
    activeHost: () => 'hv-a',
    notCurrentReason: (_vm: string, h: string) => (ready.has(h) ? undefined : 'no shadow there'),
    trigger: async () => {
      throw new Error('g1 is a QEMU VM: the VM route runs it');
    },
    list: async () => [],
  } as unknown as IpSwitchover;
  const binding = migrationService({ switchover: ip, logger: silentLogger() });
  binding.routes.installVmRoute({
    handles: async (vmId) => vmId === 'g1',
    notReadyReason: async (_vm, h) => (ready.has(h) ? undefined : `cannot switch vm 'g1' to '${h}': no shadow VM there`),
    trigger: async (vmId, dest, progress?: (p: MigrationProgress) => void) => {
      const steps: SwitchoverEvent['steps'] = [];
      for (const [i, step] of STEPS.entries()) {
        const host = i < 3 || i === 5 ? 'hv-a' : dest;
        progress?.({ step, hostId: host });
        if (i === 0) await gate.wait;
        progress?.({ step, hostId: host, ok: true, durationMs: i + 0.5 });
        steps.push({ step, host_id: host, duration_ms: i + 0.5, ok: true, error: '' });
      }
      return event(vmId, dest, steps);
    },
    list: async () => [],
  });
  binding.routes.installRanker({
    hostIds: () => ['hv-a', 'hv-b', 'hv-c'],
    rank: (vmId) => ({
      vmId,
      ranked: [
        { hostId: 'hv-c', rank: 1, score: 0.9, breakdown: {} as never, predictedMigrationSeconds: 0.1, reasons: ['most headroom'] },
        { hostId: 'hv-b', rank: 2, score: 0.6, breakdown: {} as never, predictedMigrationSeconds: 0.1, reasons: ['some headroom'] },
      ],
      rejected: [],
      rejectedCounts: {},
      eligible: 2,
    }),
  });
  server = await startGrpcServer({ listen: '127.0.0.1:0', credentials: serverCredentials(loadTlsMaterial(pki.coordinator)), services: [binding] });
});

test.after.always(async () => {
  gate.open?.();
  await server?.close(100);
  pki?.cleanup();
});

const conn = () => ({ endpoint: `127.0.0.1:${server.port}`, tls: pki.operator });

test.serial('steps arrive while the switchover runs, the outcome last', async (t) => {
  gate = {};
  gate.wait = new Promise((r) => (gate.open = r));
  const client = dialCoordinatorService(conn(), SERVICE);
  const seen: string[] = [];
  let sawStartBeforeRelease = false;
  try {
    const done = watchMigration(client, 'g1', 'hv-b', {
      destination: (d) => seen.push(`dest ${d.host_id} rank=${d.chosen_by_rank}`),
      step: (u) => {
        seen.push(`${u.step} ${u.state.replace('SWITCHOVER_STEP_STATE_', '')}`);
        if (u.step === 'pause-source' && u.state === 'SWITCHOVER_STEP_STATE_STARTED') {
          sawStartBeforeRelease = true;
          gate.open!();
        }
      },
    });
    const res = await done;
    t.true(sawStartBeforeRelease, 'the first step was streamed while the switchover was held inside it');
    t.is(seen[0], 'dest hv-b rank=false');
    t.deepEqual(seen.slice(1), STEPS.flatMap((s) => [`${s} STARTED`, `${s} ENDED`]));
    t.is(res.switchover.status, 'SUCCEEDED');
    t.is(res.switchover.fencing_token, '7');
    t.is(res.switchover.steps.length, STEPS.length);
  } finally {
    client.close();
  }
});

test.serial('umbractl migrate (no --to): best destination, progress lines, then the timings', async (t) => {
  gate = {};
  const out: string[] = [];
  const code = await runMigrateCommand(conn(), 'g1', undefined, { json: false, write: (s) => out.push(s) });
  t.is(code, 0);
  const lines = out.join('').trimEnd().split('\n');
  t.is(lines[0], 'switching g1 to the best destination...');
  t.is(lines[1], 'switching g1 hv-a -> hv-c (best by rank, score 0.90: most headroom)');
  t.regex(lines[2], /^ {2}pause-source +hv-a +\.\.\.$/);
  t.regex(lines[3], /^ {2}pause-source +hv-a +0\.50 ms {2}ok$/);
  t.regex(lines[13], /^ {2}stop-source-replication +hv-a +5\.50 ms {2}ok$/);
  t.is(lines[14], 'step timings:');
  t.regex(lines.at(-1)!, /^SUCCEEDED: g1 hv-a -> hv-c, fencing token 7, 3\.25 ms$/);
});

test.serial('--to best --json: the SwitchoverEvent with the chosen destination', async (t) => {
  const out: string[] = [];
  t.is(await runMigrateCommand(conn(), 'g1', 'best', { json: true, write: (s) => out.push(s) }), 0);
  const res = JSON.parse(out.join('')) as { status: string; destination_host: string; chosen_destination: { host_id: string; chosen_by_rank: boolean } };
  t.is(res.status, 'SUCCEEDED');
  t.is(res.destination_host, 'hv-c');
  t.deepEqual({ ...res.chosen_destination }, { host_id: 'hv-c', source_host: 'hv-a', chosen_by_rank: true, score: 0.9, reasons: ['most headroom'] });
});

test.serial('refusal: FAILED_PRECONDITION with each host\'s reason ends the stream', async (t) => {
  ready.clear();
  try {
    const err = await t.throwsAsync(runMigrateCommand(conn(), 'g1', undefined, { json: true, write: () => undefined }), { instanceOf: UmbraError });
    t.is((err as UmbraError).reason, 'FAILED_PRECONDITION');
    t.regex(err!.message, /no host holds a ready shadow of vm 'g1' \(hv-b: .*no shadow VM there; hv-c: /);
  } finally {
    ready.add('hv-b').add('hv-c');
  }
});

test.serial('bad request: INVALID_ARGUMENT naming the field, on both RPCs', async (t) => {
  const client = dialCoordinatorService(conn(), SERVICE);
  try {
    const e1 = await t.throwsAsync(watchMigration(client, 'g1', 'not a host!'), { instanceOf: UmbraError });
    t.is((e1 as UmbraError).reason, 'INVALID_ARGUMENT');
    t.regex(e1!.message, /destination_host/);
    const e2 = await t.throwsAsync(callUnary(client, 'TriggerMigration', { vm_id: '', destination_host: '' }), { instanceOf: UmbraError });
    t.is((e2 as UmbraError).reason, 'INVALID_ARGUMENT');
    t.regex(e2!.message, /vm_id/);
  } finally {
    client.close();
  }
});

test.serial('TriggerMigration (unary, for automation) with an empty destination reports the chosen one', async (t) => {
  const client = dialCoordinatorService(conn(), SERVICE);
  try {
    const res = await callUnary<{ switchover: { status: string; destination_host: string }; destination: { host_id: string; chosen_by_rank: boolean } }>(client, 'TriggerMigration', { vm_id: 'g1', destination_host: '' });
    t.is(res.switchover.status, 'SUCCEEDED');
    t.is(res.switchover.destination_host, 'hv-c');
    t.like(res.destination, { host_id: 'hv-c', chosen_by_rank: true });
  } finally {
    client.close();
  }
});

// A restarted coordinator on loopback over mTLS: agents can register while the capability modules
// still start (their services answer UNAVAILABLE until then), and hosts known from the store get
// no liveness verdict during the restart grace, then go SUSPECT and DOWN if they stay silent.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { startCoordinator, type CoordinatorDaemon } from '../../coordinator/coordinator-daemon';
import { parseCoordinatorConfig } from '../../coordinator/config';
import { factsToWire } from '../../coordinator/api/host-messages';
import type { CoordinatorModuleDefinition } from '../../coordinator/coordinator-module';
import { dial, type GenericClient } from '../../shared/grpc-client';
import { channelOptions } from '../../shared/grpc-server';
import { channelCredentials, loadTlsMaterial, type TlsPaths } from '../../shared/tls';
import { silentLogger } from '../../shared/log';
import { hostFacts } from '../fakes/host-facts';
import { createPkiFixture, type PkiFixture } from '../helpers/pki-fixture';
import { waitFor } from '../helpers/netns';

const COORDINATOR = 'umbra.coordinator.v1.CoordinatorService';
const PREDICTION = 'umbra.coordinator.v1.PredictionService';
const SHADOW = 'umbra.coordinator.v1.ShadowService';
const MIGRATION = 'umbra.coordinator.v1.MigrationService';
const HealthClient = grpc.makeGenericClientConstructor(healthService as unknown as grpc.ServiceDefinition, 'Health');
const SERVING_STATUS = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];

function creds(paths: TlsPaths) {
  return channelCredentials(loadTlsMaterial(paths), { role: 'coordinator' });
}

/** grpc.health.v1 Check of one service. */
function health(port: number, service: string): Promise<string> {
  const c = new HealthClient(`127.0.0.1:${port}`, creds(pki.operator), channelOptions());
  return new Promise((resolve, reject) =>
    c.makeUnaryRequest(
      '/grpc.health.v1.Health/Check',
      (m: { service: string }) => Buffer.from(healthService.Check.requestSerialize(m)),
      (b: Buffer) => healthService.Check.responseDeserialize(b) as { status: string | number },
      { service },
      (err, res) => {
        c.close();
        if (err) reject(err);
        else resolve(typeof res!.status === 'number' ? SERVING_STATUS[res!.status] : res!.status);
      },
    ),
  );
}

/** The status a server-streaming call ends with. */
function streamStatus(service: string, port: number, paths: TlsPaths, method: string, req: unknown): Promise<{ code: number; details: string }> {
  const c: GenericClient = dial(service, `127.0.0.1:${port}`, creds(paths));
  return new Promise((resolve) => {
    const stream = (c[method] as (r: unknown, o: unknown) => grpc.ClientReadableStream<unknown>).call(c, req, { deadline: new Date(Date.now() + 10_000) });
    stream.on('data', () => undefined);
    stream.on('status', (st: grpc.StatusObject) => {
      c.close();
      resolve({ code: st.code, details: st.details });
    });
    stream.on('error', () => undefined);
  });
}

let pki: PkiFixture;
const dirs: string[] = [];
const daemons: CoordinatorDaemon[] = [];

test.before(async () => {
  pki = await createPkiFixture(['h1', 'h2']);
});

test.after.always(async () => {
  for (const d of daemons) await d.close().catch(() => undefined);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  pki?.cleanup();
});

function tempDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'umbra-restartgrace-'));
  dirs.push(d);
  return d;
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

function call(service: string, port: number, paths: TlsPaths, method: string, req: unknown): Promise<{ code: number; details: string; res?: Record<string, unknown> }> {
  const c: GenericClient = dial(service, `127.0.0.1:${port}`, channelCredentials(loadTlsMaterial(paths), { role: 'coordinator' }));
  return new Promise((resolve) => {
    (c[method] as (r: unknown, o: unknown, cb: (e: { code: number; details: string } | null, r: Record<string, unknown>) => void) => void).call(
      c,
      req,
      { deadline: new Date(Date.now() + 10_000) },
      (err, res) => {
        c.close();
        resolve(err ? { code: err.code, details: err.details } : { code: status.OK, details: '', res });
      },
    );
  });
}

test.serial('agents register while modules start; module services answer UNAVAILABLE until all are ready', async (t) => {
  const port = await freePort();
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let startedCalled!: () => void;
  const moduleStarting = new Promise<void>((r) => (startedCalled = r));
  // A module whose start takes as long as the test says (like the switchover module's recovery).
  const slow: CoordinatorModuleDefinition<undefined> = {
    name: 'slow',
    parseConfig: () => undefined,
    async start() {
      startedCalled();
      await released;
      return { services: [{ name: PREDICTION, handlers: { GetPolicy: (_call: unknown, cb: (e: null, r: unknown) => void) => cb(null, {}) } as never }], close: async () => undefined };
    },
  };
  const config = parseCoordinatorConfig({ listen: `127.0.0.1:${port}`, data_dir: tempDir(), metrics_listen: '', tls: pki.coordinator }, 'test');
  t.teardown(() => release()); // a failed assertion must not leave the start hanging
  const starting = startCoordinator(config, silentLogger(), { modules: [slow as CoordinatorModuleDefinition<never>] });
  starting.then((d) => daemons.push(d), () => undefined);
  await moduleStarting;

  const reg = await call(COORDINATOR, port, pki.agent('h1'), 'RegisterHost', { facts: factsToWire(hostFacts('h1')) });
  t.is(reg.code, status.OK, reg.details);
  const list = await call(COORDINATOR, port, pki.operator, 'ListHosts', {});
  t.deepEqual((list.res!.hosts as Array<{ facts: { host_id: string } }>).map((h) => h.facts.host_id), ['h1']);
  const early = await call(PREDICTION, port, pki.operator, 'GetPolicy', {});
  t.is(early.code, status.UNAVAILABLE, early.details);
  t.regex(early.details, /PredictionService\.GetPolicy is not ready: the coordinator is starting/);
  const stream = await streamStatus(MIGRATION, port, pki.operator, 'TriggerMigrationWatch', { vm_id: 'g1', destination_host: 'h1' });
  t.is(stream.code, status.UNAVAILABLE, stream.details);
  t.regex(stream.details, /MigrationService\.TriggerMigrationWatch is not ready/);
  t.is(await health(port, PREDICTION), 'NOT_SERVING');
  t.is(await health(port, COORDINATOR), 'SERVING');

  release();
  await starting;
  const ready = await call(PREDICTION, port, pki.operator, 'GetPolicy', {});
  t.is(ready.code, status.OK, ready.details);
  t.is(await health(port, PREDICTION), 'SERVING');
  const absent = await call(SHADOW, port, pki.operator, 'ListVms', {});
  t.is(absent.code, status.UNIMPLEMENTED, 'a service no running module provides');
});

test.serial('a restarted coordinator gives no verdict on its known hosts during the restart grace, then SUSPECT and DOWN', async (t) => {
  const dataDir = tempDir();
  const port = await freePort();
  const raw = (grace: number, downAfterMs = 600) => ({
    listen: `127.0.0.1:${port}`, data_dir: dataDir, metrics_listen: '', tls: pki.coordinator, heartbeat_interval_ms: 100,
    liveness: { suspect_after_ms: 300, down_after_ms: downAfterMs, restart_grace_ms: grace },
  });
  const first = await startCoordinator(parseCoordinatorConfig(raw(0), 'test'), silentLogger(), { modules: [] });
  t.is((await call(COORDINATOR, port, pki.agent('h1'), 'RegisterHost', { facts: factsToWire(hostFacts('h1')) })).code, status.OK);
  await first.close();

  // A grace far longer than the test: whatever the machine's load, h1 must get no verdict.
  const second = await startCoordinator(parseCoordinatorConfig(raw(120_000), 'test'), silentLogger(), { modules: [] });
  daemons.push(second);
  const state = async (id: string) => {
    const r = await call(COORDINATOR, port, pki.operator, 'GetHost', { host_id: id });
    return (r.res?.host as { state: string } | undefined)?.state;
  };
  const h1Changes = async () => {
    const r = await call(COORDINATOR, port, pki.operator, 'ListEvents', { after_sequence: 0, limit: 1000 });
    return (r.res!.events as Array<{ kind: string; host_id: string; new_state: string }>).filter((e) => e.host_id === 'h1' && e.kind === 'EVENT_KIND_HOST_STATE_CHANGED').map((e) => e.new_state);
  };
  // h2 joins after the restart and stays silent: once it is DOWN, the sweep has run past the
  // down timeout, and h1 (known from the store, silent too) must still be as stored.
  t.is((await call(COORDINATOR, port, pki.agent('h2'), 'RegisterHost', { facts: factsToWire(hostFacts('h2')) })).code, status.OK);
  await waitFor('h2 down', async () => ((await state('h2')) === 'HOST_STATE_DOWN' ? true : undefined), 20_000);
  t.is(await state('h1'), 'HOST_STATE_UP');
  t.deepEqual(await h1Changes(), [], 'no state-change event for a host during the restart grace');
  // Operators see which states are stored ones, not verdicts: in GetHost and ListHosts.
  const awaiting = async () => {
    const one = (await call(COORDINATOR, port, pki.operator, 'GetHost', { host_id: 'h1' })).res?.host as { awaiting_contact?: boolean };
    const all = (await call(COORDINATOR, port, pki.operator, 'ListHosts', {})).res?.hosts as Array<{ facts: { host_id: string }; awaiting_contact?: boolean }>;
    return { get: one.awaiting_contact, list: Object.fromEntries(all.map((h) => [h.facts.host_id, h.awaiting_contact])) };
  };
  t.deepEqual(await awaiting(), { get: true, list: { h1: true, h2: false } });
  t.is((await call(COORDINATOR, port, pki.agent('h1'), 'RegisterHost', { facts: factsToWire(hostFacts('h1')) })).code, status.OK);
  await waitFor('h1 heard from', async () => ((await awaiting()).get === false ? true : undefined), 5_000);
  await second.close();
  daemons.pop();

  // Restarted again with a short grace: once it is over, the silent host is SUSPECT, then DOWN
  // (2.7 s later: room enough for a sweep in between however loaded the machine).
  const third = await startCoordinator(parseCoordinatorConfig(raw(500, 3000), 'test'), silentLogger(), { modules: [] });
  daemons.push(third);
  await waitFor('h1 down after the grace', async () => ((await state('h1')) === 'HOST_STATE_DOWN' ? true : undefined), 20_000);
  t.deepEqual(await h1Changes(), ['HOST_STATE_SUSPECT', 'HOST_STATE_DOWN']);
});

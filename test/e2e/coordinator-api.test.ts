// The coordinator's gRPC API on loopback over mTLS: identities, field validation, size caps.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { startCoordinator, type CoordinatorDaemon } from '../../coordinator/coordinator-daemon';
import { parseCoordinatorConfig } from '../../coordinator/config';
import { factsToWire } from '../../coordinator/api/host-messages';
import { dial, type GenericClient } from '../../shared/grpc-client';
import { channelCredentials, loadTlsMaterial, type TlsPaths } from '../../shared/tls';
import { silentLogger } from '../../shared/log';
import { hostFacts } from '../fakes/host-facts';
import { createPkiFixture, type PkiFixture } from '../helpers/pki-fixture';

let pki: PkiFixture;
let dataDir: string;
let daemon: CoordinatorDaemon;
const SERVICE = 'umbra.coordinator.v1.CoordinatorService';

function client(paths: TlsPaths): GenericClient {
  return dial(SERVICE, `127.0.0.1:${daemon.grpcPort}`, channelCredentials(loadTlsMaterial(paths), { role: 'coordinator' }));
}

function call(c: GenericClient, method: string, req: unknown): Promise<{ code: number; details: string; res?: Record<string, unknown> }> {
  return new Promise((resolve) => {
    (c[method] as (r: unknown, o: unknown, cb: (e: { code: number; details: string } | null, r: Record<string, unknown>) => void) => void).call(
      c,
      req,
      { deadline: new Date(Date.now() + 5000) },
      (err, res) => resolve(err ? { code: err.code, details: err.details } : { code: status.OK, details: '', res }),
    );
  });
}

test.before(async () => {
  pki = await createPkiFixture(['h1', 'h2']);
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'umbra-coord-'));
  const config = parseCoordinatorConfig({ listen: '127.0.0.1:0', data_dir: dataDir, metrics_listen: '', tls: pki.coordinator }, 'test');
  daemon = await startCoordinator(config, silentLogger());
});

test.after.always(async () => {
  await daemon?.close();
  rmSync(dataDir, { recursive: true, force: true });
  pki?.cleanup();
});

test.serial('an agent registers itself and an operator sees it', async (t) => {
  const agent = client(pki.agent('h1'));
  const r = await call(agent, 'RegisterHost', { facts: factsToWire(hostFacts('h1')) });
  t.is(r.code, status.OK, r.details);
  const op = client(pki.operator);
  const list = await call(op, 'ListHosts', {});
  t.deepEqual((list.res!.hosts as Array<{ facts: { host_id: string } }>).map((h) => h.facts.host_id), ['h1']);
  const one = await call(op, 'GetHost', { host_id: 'h1' });
  t.is((one.res!.host as { state: string }).state, 'HOST_STATE_UP');
});

test.serial('an agent cannot register another host id', async (t) => {
  const r = await call(client(pki.agent('h2')), 'RegisterHost', { facts: factsToWire(hostFacts('h1')) });
  t.is(r.code, status.PERMISSION_DENIED);
  t.regex(r.details, /agent\/h2 may not register host 'h1'/);
});

test.serial('an operator certificate cannot register as an agent', async (t) => {
  const r = await call(client(pki.operator), 'RegisterHost', { facts: factsToWire(hostFacts('tester')) });
  t.is(r.code, status.PERMISSION_DENIED);
  t.regex(r.details, /operator\/tester may not call RegisterHost/);
});

test.serial('an agent cannot remove hosts', async (t) => {
  const r = await call(client(pki.agent('h1')), 'RemoveHost', { host_id: 'h2' });
  t.is(r.code, status.PERMISSION_DENIED);
});

test.serial('a certificate from another CA fails the handshake', async (t) => {
  const r = await call(client(pki.foreignAgent), 'ListHosts', {});
  t.is(r.code, status.UNAVAILABLE);
});

test.serial('invalid fields get INVALID_ARGUMENT naming the field, and nothing is written', async (t) => {
  const agent = client(pki.agent('h2'));
  const bad = factsToWire(hostFacts('h2'));
  bad.capacity.cpu_cores = 0;
  const r = await call(agent, 'RegisterHost', { facts: bad });
  t.is(r.code, status.INVALID_ARGUMENT);
  t.regex(r.details, /^facts\.capacity\.cpu_cores: /);
  const get = await call(client(pki.operator), 'GetHost', { host_id: 'h2' });
  t.is(get.code, status.NOT_FOUND);
  const badId = await call(client(pki.operator), 'GetHost', { host_id: 'no such/host' });
  t.is(badId.code, status.INVALID_ARGUMENT);
  t.regex(badId.details, /^host_id: /);
  const badLimit = await call(client(pki.operator), 'ListEvents', { limit: 5000 });
  t.is(badLimit.code, status.INVALID_ARGUMENT);
  t.regex(badLimit.details, /^limit: /);
});

test.serial('unknown ids are NOT_FOUND', async (t) => {
  const r = await call(client(pki.operator), 'GetHost', { host_id: 'ghost' });
  t.is(r.code, status.NOT_FOUND);
  t.regex(r.details, /host 'ghost' not found/);
});

test.serial('oversized messages are refused before any handler runs', async (t) => {
  const agent = client(pki.agent('h2'));
  const facts = factsToWire(hostFacts('h2'));
  facts.capacity.cpu_flags = Array.from({ length: 4000 }, (_, i) => `flag-${i}-${'x'.repeat(1200)}`);
  const r = await call(agent, 'RegisterHost', { facts });
  t.is(r.code, status.RESOURCE_EXHAUSTED);
  const get = await call(client(pki.operator), 'GetHost', { host_id: 'h2' });
  t.is(get.code, status.NOT_FOUND);
});

test.serial('events list the joins in order', async (t) => {
  const r = await call(client(pki.operator), 'ListEvents', {});
  const events = r.res!.events as Array<{ kind: string; host_id: string; sequence: string }>;
  t.true(events.length >= 1);
  t.is(events[0].kind, 'EVENT_KIND_HOST_JOINED');
  t.is(events[0].sequence, '1');
});

test.serial('WatchEvents replays the log, streams new events, and a cancelled watcher leaves the others streaming', async (t) => {
  type Ev = { event: { kind: string; host_id: string; sequence: string } };
  const op = client(pki.operator);
  const watch = (req: unknown) => {
    const stream = (op.WatchEvents as (r: unknown) => import('@grpc/grpc-js').ClientReadableStream<Ev>).call(op, req);
    const seen: Ev['event'][] = [];
    const waiters: Array<() => void> = [];
    stream.on('data', (m: Ev) => {
      seen.push(m.event);
      for (const w of waiters.splice(0)) w();
    });
    stream.on('error', () => undefined); // the cancellation below
    const until = async (pred: () => boolean) => {
      const deadline = Date.now() + 5000;
      while (!pred()) {
        if (Date.now() > deadline) throw new Error(`no such event among ${JSON.stringify(seen)}`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 100);
        });
      }
    };
    return { stream, seen, until };
  };
  const first = watch({ from_start: true });
  await first.until(() => first.seen.some((e) => e.kind === 'EVENT_KIND_HOST_JOINED' && e.host_id === 'h1'));
  const second = watch({});
  const agent = client(pki.agent('h2'));
  t.is((await call(agent, 'RegisterHost', { facts: factsToWire(hostFacts('h2')) })).code, status.OK);
  await first.until(() => first.seen.some((e) => e.host_id === 'h2'));
  await second.until(() => second.seen.some((e) => e.host_id === 'h2'));
  t.false(second.seen.some((e) => e.host_id === 'h1'), 'a watch without from_start replays nothing');
  first.stream.cancel();
  t.is((await call(agent, 'RegisterHost', { facts: factsToWire(hostFacts('h2')) })).code, status.OK);
  await second.until(() => second.seen.some((e) => e.kind === 'EVENT_KIND_HOST_REREGISTERED' && e.host_id === 'h2'));
  const seqs = second.seen.map((e) => Number(e.sequence));
  t.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'in sequence order');
  second.stream.cancel();
});

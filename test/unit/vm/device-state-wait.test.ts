// The device-state helpers against a scripted fake QMP server: the destination's load end is seen
// through QEMU's MIGRATION event (not by polling), a failed load is a typed error, and the source
// refuses to migrate a running guest without sending `migrate`.
import test from 'ava';
import type { Server, Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { QmpClient } from '../../../agent/vm/qmp-client';
import { DeviceStateMigrationError, migrateDeviceState, resumeGuest, waitIncomingLoaded } from '../../../agent/vm/device-state-migration';
import { FailedPreconditionError } from '../../../shared/errors';

import { startFakeQmpServer, type QmpHandler } from '../../fakes/fake-qmp-server';

const dir = mkdtempSync(path.join(os.tmpdir(), 'umbra-dsw-unit-'));
let serial = 0;
const servers: Server[] = [];
const clients: QmpClient[] = [];

test.after.always(() => {
  for (const c of clients) c.close();
  for (const s of servers) s.close();
  rmSync(dir, { recursive: true, force: true });
});

async function fakeQmp(handler: QmpHandler): Promise<{ path: string; received: string[] }> {
  const p = path.join(dir, `q${serial++}.sock`);
  const fake = await startFakeQmpServer(p, handler);
  servers.push(fake.server);
  return { path: p, received: fake.received };
}

async function connect(p: string): Promise<QmpClient> {
  const c = await QmpClient.connect(p);
  clients.push(c);
  return c;
}

const answer = (sock: Socket, id: string, ret: unknown) => sock.write(JSON.stringify({ return: ret, id }) + '\r\n');
const migrationEvent = (sock: Socket, status: string) =>
  sock.write(JSON.stringify({ event: 'MIGRATION', data: { status }, timestamp: { seconds: 0, microseconds: 0 } }) + '\r\n');

/** A destination that is loading at the first query, then announces `end` (and reports it after). */
function loadingDestination(end: 'completed' | 'failed'): QmpHandler {
  let ended = false;
  return (cmd, sock) => {
    if (cmd.execute !== 'query-migrate') return answer(sock, cmd.id, {});
    answer(sock, cmd.id, { status: ended ? end : 'active' });
    if (!ended) {
      ended = true;
      setTimeout(() => migrationEvent(sock, end), 20);
    }
  };
}

test('the load end is taken from the MIGRATION event: one query before it, none in between or after', async (t) => {
  const srv = await fakeQmp(loadingDestination('completed'));
  const qmp = await connect(srv.path);
  // A poll interval far longer than the test: only the event can end the wait in time.
  const r = await waitIncomingLoaded(qmp, 60_000, 60_000);
  t.like(r, { seenBy: 'event', queries: 1, completedAtMs: 0 }, "QEMU's event timestamp is the load's end");
  t.deepEqual(srv.received.filter((c) => c === 'query-migrate').length, 1);
});

test('a load that fails is a DeviceStateMigrationError with the status', async (t) => {
  const srv = await fakeQmp(loadingDestination('failed'));
  const qmp = await connect(srv.path);
  const err = await t.throwsAsync(waitIncomingLoaded(qmp, 60_000, 60_000), { instanceOf: DeviceStateMigrationError });
  t.is(err?.status, 'failed');
});

test('without an event, the wait asks again every pollMs and times out with the last status', async (t) => {
  const srv = await fakeQmp((cmd, sock) => answer(sock, cmd.id, cmd.execute === 'query-migrate' ? { status: 'active' } : {}));
  const qmp = await connect(srv.path);
  const err = await t.throwsAsync(waitIncomingLoaded(qmp, 100, 10), { instanceOf: DeviceStateMigrationError });
  t.regex(err!.message, /still active/);
  t.true(srv.received.filter((c) => c === 'query-migrate').length >= 2);
});

test('the source refuses a running guest and never sends migrate', async (t) => {
  const srv = await fakeQmp((cmd, sock) => answer(sock, cmd.id, cmd.execute === 'query-status' ? { status: 'running', running: true } : {}));
  const qmp = await connect(srv.path);
  await t.throwsAsync(migrateDeviceState(qmp, 'unix:/nonexistent.sock', 1000), { instanceOf: FailedPreconditionError });
  t.false(srv.received.includes('migrate'));
});

/** A paused guest: cont answers, then RESUME follows (as QEMU sends them); query-status says paused. */
const pausedGuest: QmpHandler = (cmd, sock) => {
  if (cmd.execute === 'query-status') answer(sock, cmd.id, { status: 'paused', running: false });
  else if (cmd.execute === 'cont') {
    answer(sock, cmd.id, {});
    sock.write(JSON.stringify({ event: 'RESUME', data: {}, timestamp: { seconds: 0, microseconds: 0 } }) + '\r\n');
  }
};

test('resumeGuest: asks the status first, unless the caller knows the guest is paused (a loaded shadow): then only cont, resolved by RESUME', async (t) => {
  const plain = await fakeQmp(pausedGuest);
  await resumeGuest(await connect(plain.path), 2000);
  t.deepEqual(plain.received.filter((c) => c !== 'qmp_capabilities'), ['query-status', 'cont']);
  const known = await fakeQmp(pausedGuest);
  await resumeGuest(await connect(known.path), 2000, true);
  t.deepEqual(known.received.filter((c) => c !== 'qmp_capabilities'), ['cont']);
});

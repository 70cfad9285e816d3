// QmpClient against a scripted fake QMP server on a unix socket: handshake, answers matched by
// id, typed errors, timeouts, events, and disconnects failing pending commands.
import test from 'ava';
import type { Server, Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { QmpClient } from '../../../agent/vm/qmp-client';
import { QmpDisconnectedError, QmpError, QmpTimeoutError, QmpWaitCancelledError } from '../../../agent/vm/qmp-errors';

import { startFakeQmpServer, type QmpHandler } from '../../fakes/fake-qmp-server';

const dir = mkdtempSync(path.join(os.tmpdir(), 'umbra-qmp-unit-'));
let serial = 0;
const servers: Server[] = [];

test.after.always(() => {
  for (const s of servers) s.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A fake QEMU: greets, accepts qmp_capabilities, then hands other commands to `handler`. */
async function fakeQmp(handler: QmpHandler, opts: { greet?: boolean } = {}): Promise<{ path: string; sockets: Socket[]; received: string[] }> {
  const p = path.join(dir, `q${serial++}.sock`);
  const fake = await startFakeQmpServer(p, handler, opts);
  servers.push(fake.server);
  return { path: p, sockets: fake.sockets, received: fake.received };
}

test('handshake, then answers are matched to commands by id even out of order', async (t) => {
  const held: Array<{ id: string; execute: string }> = [];
  const srv = await fakeQmp((cmd, sock) => {
    held.push(cmd);
    if (held.length === 2) {
      // Answer the second command first.
      sock.write(JSON.stringify({ return: { status: 'paused', running: false }, id: held[1].id }) + '\r\n');
      sock.write(JSON.stringify({ return: {}, id: held[0].id }) + '\r\n');
    }
  });
  const qmp = await QmpClient.connect(srv.path);
  t.deepEqual(srv.received, ['qmp_capabilities']);
  t.is(qmp.greeting.version?.qemu?.major, 7);
  const [stopped, status] = await Promise.all([qmp.stop(), qmp.queryStatus()]);
  t.is(stopped, undefined);
  t.deepEqual(status, { status: 'paused', running: false });
  qmp.close();
});

test('a QEMU error becomes QmpError with class and desc', async (t) => {
  const srv = await fakeQmp((cmd, sock) => sock.write(JSON.stringify({ error: { class: 'GenericError', desc: 'nope' }, id: cmd.id }) + '\r\n'));
  const qmp = await QmpClient.connect(srv.path);
  const err = await t.throwsAsync(qmp.migrate('unix:/x'));
  t.true(err instanceof QmpError);
  t.is((err as QmpError).errorClass, 'GenericError');
  t.is((err as QmpError).desc, 'nope');
  t.is((err as QmpError).command, 'migrate');
  t.is((err as QmpError).reason, 'FAILED_PRECONDITION');
  qmp.close();
});

test('an unanswered command times out with QmpTimeoutError and a late answer is ignored', async (t) => {
  let late: (() => void) | undefined;
  const srv = await fakeQmp((cmd, sock) => {
    if (cmd.execute === 'slow') late = () => sock.write(JSON.stringify({ return: 'late', id: cmd.id }) + '\r\n');
    else sock.write(JSON.stringify({ return: 42, id: cmd.id }) + '\r\n');
  });
  const qmp = await QmpClient.connect(srv.path);
  const err = await t.throwsAsync(qmp.execute('slow', undefined, { timeoutMs: 50 }));
  t.true(err instanceof QmpTimeoutError);
  t.is((err as QmpTimeoutError).reason, 'DEADLINE_EXCEEDED');
  late!();
  t.is(await qmp.execute<number>('fast'), 42);
  qmp.close();
});

test('no greeting within the connect timeout fails with QmpTimeoutError', async (t) => {
  const srv = await fakeQmp(() => undefined, { greet: false });
  const err = await t.throwsAsync(QmpClient.connect(srv.path, { connectTimeoutMs: 100 }));
  t.true(err instanceof QmpTimeoutError);
});

test('a missing socket fails with QmpDisconnectedError', async (t) => {
  const err = await t.throwsAsync(QmpClient.connect(path.join(dir, 'absent.sock'), { connectTimeoutMs: 500 }));
  t.true(err instanceof QmpDisconnectedError);
  t.is((err as QmpDisconnectedError).reason, 'UNAVAILABLE');
});

test('events reach every listener; waitForEvent matches name and predicate', async (t) => {
  const srv = await fakeQmp((cmd, sock) => {
    sock.write(JSON.stringify({ return: {}, id: cmd.id }) + '\r\n');
    sock.write('{"event": "MIGRATION", "data": {"status": "setup"}, "timestamp": {"seconds": 1, "microseconds": 0}}\r\n');
    sock.write('{"event": "MIGRATION", "data": {"status": "completed"}, "timestamp": {"seconds": 2, "microseconds": 0}}\r\n');
  });
  const qmp = await QmpClient.connect(srv.path);
  const all = qmp.events();
  const done = qmp.waitForEvent('MIGRATION', 2000, (ev) => ev.data.status === 'completed');
  await qmp.migrate('unix:/x');
  const ev = await done;
  t.is(ev.timestampMs, 2000);
  const first = await all.next();
  const second = await all.next();
  t.deepEqual([first.value?.data.status, second.value?.data.status], ['setup', 'completed']);
  await all.return?.();
  qmp.close();
});

test('an aborted waitForEvent ends at once with QmpWaitCancelledError and lets go of its listener', async (t) => {
  const srv = await fakeQmp((cmd, sock) => sock.write(JSON.stringify({ return: {}, id: cmd.id }) + '\r\n'));
  const qmp = await QmpClient.connect(srv.path);
  const listeners = () => (qmp as unknown as { listeners: Set<unknown> }).listeners.size;
  const before = listeners();
  const ac = new AbortController();
  const t0 = performance.now();
  const waiting = qmp.waitForEvent('RESUME', 60000, undefined, ac.signal);
  t.is(listeners(), before + 1);
  ac.abort('called off');
  const err = await t.throwsAsync(waiting);
  t.true(err instanceof QmpWaitCancelledError);
  t.is((err as QmpWaitCancelledError).reason, 'CANCELLED');
  t.regex(err!.message, /RESUME.*called off/);
  t.true(performance.now() - t0 < 30000, 'ended by the abort, not by its 60 s timeout');
  t.is(listeners(), before);
  const already = await t.throwsAsync(qmp.waitForEvent('RESUME', 60000, undefined, ac.signal));
  t.true(already instanceof QmpWaitCancelledError);
  t.is(listeners(), before);
  qmp.close();
});

test('a disconnect fails pending commands and ends event streams', async (t) => {
  const srv = await fakeQmp((_cmd, sock) => sock.destroy());
  const qmp = await QmpClient.connect(srv.path);
  const events = qmp.events();
  const err = await t.throwsAsync(qmp.cont());
  t.true(err instanceof QmpDisconnectedError);
  t.true((await events.next()).done);
  t.true(qmp.closed);
  await t.throwsAsync(qmp.queryStatus(), { instanceOf: QmpDisconnectedError });
  const waited = await t.throwsAsync(qmp.waitForEvent('STOP', 1000));
  t.true(waited instanceof QmpDisconnectedError);
});

test('quit treats the socket closing as success', async (t) => {
  const srv = await fakeQmp((cmd, sock) => {
    if (cmd.execute === 'quit') sock.destroy();
  });
  const qmp = await QmpClient.connect(srv.path);
  await t.notThrowsAsync(qmp.quit(1000));
});

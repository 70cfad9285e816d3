// Finding a guest's process from what an operator configures: a PID file, a QMP socket path (the
// process listening on it), or the RAM's backing path and size; each resolves to the real process.
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { locateGuestProcess } from '../../../agent/memory/guest-process-locator';
import { nativeAvailable } from '../../../agent/memory/native-binding';
import { locateGuestRam } from '../../../agent/memory/proc-guest-memory';
import { isUmbraError } from '../../../shared/errors';
import { isRoot, waitFor } from '../../helpers/netns';
import { ShmWriterProcess } from './shm-writer-process';

const PAGES = 1237; // an unusual size, so a writer of another test running at the same time is not found instead
const why = !isRoot() ? 'needs root (/proc of other processes)' : !nativeAvailable() ? 'native addon not built (shm-writer)' : undefined;
const dir = mkdtempSync(path.join(tmpdir(), 'umbra-locator-'));
const cleanups: Array<() => void> = [() => rmSync(dir, { recursive: true, force: true })];
test.after.always(() => cleanups.forEach((c) => c()));

(why ? test.skip : test)(`pid file, QMP socket and RAM path each find the process${why ? ` (skipped: ${why})` : ''}`, async (t) => {
  const writer = await ShmWriterProcess.start(PAGES, false);
  cleanups.push(() => writer.close());
  const memoryBytes = writer.sizeBytes;

  const byPath = locateGuestProcess({ memoryPath: 'memfd:umbra-test-ram', memoryBytes });
  t.is(byPath.pid, writer.pid);
  t.is(locateGuestRam(byPath.pid, { sizeBytes: memoryBytes, pathContains: byPath.pathContains }).startAddress, writer.startAddress);

  const pidFile = path.join(dir, 'vm.pid');
  writeFileSync(pidFile, `${writer.pid}\n`);
  t.is(locateGuestProcess({ pidFile, memoryBytes }).pid, writer.pid);

  // A stand-in for QEMU's QMP server: a process listening on a unix socket.
  const sock = path.join(dir, 'qmp.sock');
  const qmp = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(sock)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  cleanups.push(() => qmp.kill('SIGKILL'));
  await new Promise((resolve) => qmp.stdout!.once('data', resolve));
  const found = await waitFor('the QMP listener', async () => {
    try {
      return locateGuestProcess({ qmpSocket: sock, memoryBytes });
    } catch {
      return undefined;
    }
  });
  t.is(found.pid, qmp.pid as number);

  const missing = t.throws(() => locateGuestProcess({ qmpSocket: path.join(dir, 'none.sock'), memoryBytes }));
  t.true(isUmbraError(missing) && missing.reason === 'NOT_FOUND');
  const noMapping = t.throws(() => locateGuestProcess({ memoryPath: 'memfd:umbra-test-ram', memoryBytes: memoryBytes + 4096 }));
  t.true(isUmbraError(noMapping) && noMapping.reason === 'NOT_FOUND');
  writeFileSync(pidFile, 'garbage');
  const bad = t.throws(() => locateGuestProcess({ pidFile, memoryBytes }));
  t.regex(bad!.message, /^pid_file: /);
});

// The shadow image dir's file system, read with the real statfs: /dev/shm is a tmpfs on every
// Linux this runs on, and a dir that does not exist yet is judged by the ancestor it will be made in.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { filesystemKind, filesystemOf } from '../../../agent/os/filesystem-kind';

test('a dir under /dev/shm is on tmpfs, also before it exists', async (t) => {
  const dir = mkdtempSync('/dev/shm/umbra-fs-kind-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.deepEqual(await filesystemOf(dir), { name: 'tmpfs', inMemory: true });
  t.deepEqual(await filesystemOf(path.join(dir, 'not', 'yet')), { name: 'tmpfs', inMemory: true });
});

test('the kind read for the temp dir is the one coreutils stat reads', async (t) => {
  const magic = parseInt(execFileSync('stat', ['-f', '-c', '%t', os.tmpdir()], { encoding: 'utf8' }).trim(), 16);
  t.deepEqual(await filesystemOf(os.tmpdir()), filesystemKind(magic));
});

// Builds small throw-away root filesystems for dpkg --root / rpm --root: just enough of this
// machine's own tools (with their libraries) for the packages' maintainer scripts to run inside.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** Commands the maintainer scripts call (see packaging/deb and packaging/rpm). */
const SCRIPT_TOOLS = ['sh', 'mkdir', 'chmod', 'chown', 'chgrp', 'rm', 'rmdir', 'stat', 'getent', 'groupadd', 'useradd', 'cat', 'nologin'];
/** Merged-/usr layout, as on Debian 12 and every current RPM distribution. */
const USR_MERGED = ['bin', 'sbin', 'lib', 'lib64'];

export type RootKind = 'dpkg' | 'rpm';

export function which(cmd: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

function copyWithLibraries(root: string, binary: string): void {
  const copy = (file: string): void => {
    const dest = path.join(root, file);
    if (existsSync(dest)) return;
    mkdirSync(path.dirname(dest), { recursive: true });
    copyFileSync(file, dest);
    chmodSync(dest, 0o755);
  };
  copy(binary);
  let ldd = '';
  try {
    ldd = execFileSync('ldd', [binary], { encoding: 'utf8' });
  } catch {
    return; // static binary
  }
  for (const match of ldd.matchAll(/(\/\S+)/g)) copy(match[1]);
}

/** A fresh root with /bin/sh and the scripts' tools, root in passwd/group, /dev/null, and an empty package database. */
export function createThrowawayRoot(kind: RootKind): string {
  const root = mkdtempSync(path.join(tmpdir(), `umbra-${kind}-root-`));
  for (const d of USR_MERGED) {
    mkdirSync(path.join(root, 'usr', d), { recursive: true });
    symlinkSync(`usr/${d}`, path.join(root, d));
  }
  for (const d of ['etc', 'tmp', 'dev', 'run', 'var/lib']) mkdirSync(path.join(root, d), { recursive: true });
  execFileSync('mknod', ['-m', '666', path.join(root, 'dev/null'), 'c', '1', '3']);
  for (const tool of SCRIPT_TOOLS) {
    const bin = which(tool);
    if (!bin) throw new Error(`${tool} is not installed on this machine`);
    copyWithLibraries(root, bin);
  }
  writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\n');
  writeFileSync(path.join(root, 'etc/shadow'), 'root:*:19000:0:99999:7:::\n', { mode: 0o640 });
  writeFileSync(path.join(root, 'etc/gshadow'), 'root:*::\n', { mode: 0o640 });
  if (kind === 'dpkg') {
    const admin = path.join(root, 'var/lib/dpkg');
    mkdirSync(path.join(admin, 'info'), { recursive: true });
    mkdirSync(path.join(admin, 'updates'), { recursive: true });
    writeFileSync(path.join(admin, 'status'), '');
    writeFileSync(path.join(admin, 'available'), '');
  } else {
    execFileSync('rpm', ['--root', root, '--initdb']);
  }
  return root;
}

export function removeRoot(root: string): void {
  rmSync(root, { recursive: true, force: true });
}

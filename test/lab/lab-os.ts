// What the lab does to the machine, each thing recorded in the lab state so that `lab down` can
// undo it: namespaces, and detached processes (logging to files under the lab dir) by PID.
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import path from 'node:path';
import { LAB_DIR, type LabProcess, type LabState, writeLabState } from './lab-state';

export function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A namespace with loopback up, recorded in the state. */
export function addNs(state: LabState, ns: string): string {
  ip(['netns', 'add', ns]);
  state.namespaces.push(ns);
  writeLabState(state);
  ip(['-n', ns, 'link', 'set', 'lo', 'up']);
  return ns;
}

/** Starts `cmd` inside `ns`, detached from this process, its output going to <lab>/<name>.log. */
export function startDetached(state: LabState, name: string, ns: string, cmd: string, args: string[], env: Record<string, string> = {}): LabProcess {
  const log = path.join(LAB_DIR, `${name}.log`);
  const fd = openSync(log, 'a');
  const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { detached: true, stdio: ['ignore', fd, fd], env: { ...process.env, ...env } });
  closeSync(fd);
  child.unref();
  const p = { name, ns, pid: child.pid!, log };
  state.processes.push(p);
  writeLabState(state);
  return p;
}

/** Runs `cmd` inside `ns` to completion and returns its stdout (throws with its stderr). */
export function execIn(ns: string, cmd: string, args: string[], timeoutMs = 60000): string {
  return execFileSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
}

/** The message of a failed execIn, with the command's own output first. */
export function execError(err: unknown): string {
  const e = err as { stdout?: string; stderr?: string; message?: string };
  return [e.stdout, e.stderr].filter(Boolean).join('').trim() || e.message || String(err);
}

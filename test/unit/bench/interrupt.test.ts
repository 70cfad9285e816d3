// bench/lib/interrupt: a benchmark interrupted by SIGINT or SIGTERM runs its registered cleanups
// (newest first) before it exits with 128 + the signal number; an unregistered cleanup does not run.
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const INTERRUPT_MODULE = path.join(__dirname, '..', '..', '..', 'bench', 'lib', 'interrupt.js');

async function interrupted(signal: 'SIGINT' | 'SIGTERM'): Promise<{ code: number | null; log: string[] }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'umbra-interrupt-'));
  const logFile = path.join(dir, 'log');
  const script = `
    const fs = require('node:fs');
    const { cleanupOnInterrupt } = require(${JSON.stringify(INTERRUPT_MODULE)});
    const note = (s) => async () => { await new Promise((r) => setTimeout(r, 20)); fs.appendFileSync(${JSON.stringify(logFile)}, s + '\\n'); };
    cleanupOnInterrupt(note('first'));
    const off = cleanupOnInterrupt(note('released'));
    cleanupOnInterrupt(note('second'));
    off();
    process.stdout.write('ready\\n');
    setInterval(() => undefined, 1000);
  `;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill(signal);
    const code = await exited;
    let log: string[] = [];
    try {
      log = readFileSync(logFile, 'utf8').trim().split('\n');
    } catch {
      // no cleanup ran
    }
    return { code, log };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

test('SIGINT: registered cleanups run newest first, then exit 130', async (t) => {
  const r = await interrupted('SIGINT');
  t.deepEqual(r.log, ['second', 'first']);
  t.is(r.code, 130);
});

test('SIGTERM: the same, exit 143', async (t) => {
  const r = await interrupted('SIGTERM');
  t.deepEqual(r.log, ['second', 'first']);
  t.is(r.code, 143);
});

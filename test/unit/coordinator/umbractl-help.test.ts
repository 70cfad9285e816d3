// `--help` on every umbractl command: its own usage lines, exit 0; unknown commands still fail with 2.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const UMBRACTL = path.join(__dirname, '..', '..', '..', 'coordinator', 'cli', 'umbractl.js');
const run = (args: string[]) => spawnSync(process.execPath, [UMBRACTL, ...args], { encoding: 'utf8' });

const COMMANDS = ['hosts', 'host', 'remove-host', 'events', 'shadows', 'shadow', 'migrate', 'replication', 'predictions', 'rank', 'policy', 'pki'];

for (const command of COMMANDS) {
  test(`umbractl ${command} --help prints that command's usage`, (t) => {
    const r = run([command, '--help']);
    t.is(r.status, 0, r.stderr);
    const entries = r.stdout.split('\n').filter((l) => l.startsWith('  umbractl '));
    t.true(entries.length > 0, r.stdout);
    for (const e of entries) t.true(e.startsWith(`  umbractl ${command} `) || e === `  umbractl ${command}`, e);
    t.is(r.stdout.includes('--coordinator HOST:PORT'), command !== 'pki');
  });
}

test('umbractl predict --help points to the evaluate options, exit 0', (t) => {
  const r = run(['predict', '--help']);
  t.is(r.status, 0);
  t.regex(r.stdout, /predict evaluate --traces DIR/);
});

test('umbractl --help lists every command', (t) => {
  const r = run(['--help']);
  t.is(r.status, 0);
  for (const command of COMMANDS) t.true(r.stdout.includes(`  umbractl ${command} `), command);
});

test('an unknown command is bad usage (exit 2)', (t) => {
  const r = run(['no-such-command']);
  t.is(r.status, 2);
  t.regex(r.stderr, /unknown command 'no-such-command'/);
});

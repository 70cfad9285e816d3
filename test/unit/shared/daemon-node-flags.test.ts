import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { DAEMON_NODE_FLAGS, type DaemonName, daemonNodeFlags } from '../../../shared/daemon-node-flags';

const CLI = path.resolve(__dirname, '..', '..', '..', 'shared', 'daemon-node-flags.js');

for (const name of Object.keys(DAEMON_NODE_FLAGS) as DaemonName[]) {
  test(`node starts with the ${name}'s flags`, (t) => {
    // A misspelt or removed flag makes node refuse to start: the installed daemon would not run.
    const r = spawnSync(process.execPath, [...daemonNodeFlags(name), '-e', '0'], { encoding: 'utf8' });
    t.is(r.status, 0, r.stderr);
  });

  test(`the launcher's template gets the ${name}'s flags on one line`, (t) => {
    t.is(execFileSync(process.execPath, [CLI, name], { encoding: 'utf8' }), `${daemonNodeFlags(name).join(' ')}\n`);
  });
}

test('the coordinator keeps one V8 worker thread', (t) => {
  t.true(daemonNodeFlags('coordinator').includes('--v8-pool-size=1'));
});

test('the agent keeps a small young generation', (t) => {
  t.true(daemonNodeFlags('agent').includes('--max-semi-space-size=2'));
});

test('an unknown daemon is refused with the names that exist', (t) => {
  const r = spawnSync(process.execPath, [CLI, 'agnet'], { encoding: 'utf8' });
  t.is(r.status, 2);
  t.regex(r.stderr, /coordinator\|agent\|umbractl/);
});

test('callers get a copy they may extend', (t) => {
  daemonNodeFlags('coordinator').push('--trace-gc');
  t.false(daemonNodeFlags('coordinator').includes('--trace-gc'));
});

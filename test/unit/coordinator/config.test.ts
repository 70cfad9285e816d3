import test from 'ava';
import { parseCoordinatorConfig } from '../../../coordinator/config';
import { parseAgentConfig } from '../../../agent/config';
import { InvalidConfigError } from '../../../shared/errors';

test('coordinator defaults fill an empty file', (t) => {
  const c = parseCoordinatorConfig({}, 'c.yaml');
  t.is(c.listen, '0.0.0.0:7700');
  t.is(c.dataDir, '/var/lib/umbra/coordinator');
  t.is(c.liveness.suspectAfterMs, 5000);
  t.true(c.liveness.downAfterMs > c.liveness.suspectAfterMs);
  t.is(c.liveness.restartGraceMs, 30_000);
});

test('liveness.restart_grace_ms is read and checked like the other liveness keys', (t) => {
  t.is(parseCoordinatorConfig({ liveness: { restart_grace_ms: 0 } }, 'c').liveness.restartGraceMs, 0);
  t.is(parseCoordinatorConfig({ liveness: { restart_grace_ms: 45_000 } }, 'c').liveness.restartGraceMs, 45_000);
  for (const bad of [-1, 1.5, 'soon', 3_600_001]) {
    const err = t.throws(() => parseCoordinatorConfig({ liveness: { restart_grace_ms: bad } }, 'c.yaml'), { instanceOf: InvalidConfigError });
    t.deepEqual(err!.problems.map((p) => p.path), ['liveness.restart_grace_ms'], `value ${String(bad)}`);
  }
});

test('every mistake is reported with its key path', (t) => {
  const err = t.throws(
    () =>
      parseCoordinatorConfig(
        { listen: 'nope', data_dri: '/x', liveness: { suspect_after_ms: 'soon', down_after_ms: 100 }, tls: { cert: 5 } },
        'c.yaml',
      ),
    { instanceOf: InvalidConfigError },
  );
  const paths = [...new Set(err!.problems.map((p) => p.path))].sort();
  t.deepEqual(paths, ['data_dri', 'listen', 'liveness.down_after_ms', 'liveness.suspect_after_ms', 'tls.cert']);
  t.regex(err!.message, /c\.yaml/);
  t.regex(err!.message, /listen: must be host:port, got 'nope'/);
  t.regex(err!.message, /data_dri: unknown key/);
});

test('down timeout must exceed suspect timeout', (t) => {
  const err = t.throws(() => parseCoordinatorConfig({ liveness: { suspect_after_ms: 5000, down_after_ms: 4000 } }, 'c'), { instanceOf: InvalidConfigError });
  t.is(err!.problems[0].path, 'liveness.down_after_ms');
});

test('agent config checks host id, ports and types', (t) => {
  const ok = parseAgentConfig({ host_id: 'hv-01', coordinator: '10.0.0.1:7700', heartbeat_interval_ms: 500 }, 'a.yaml');
  t.is(ok.hostId, 'hv-01');
  t.is(ok.heartbeatIntervalMs, 500);
  const err = t.throws(
    () => parseAgentConfig({ host_id: 'bad host', coordinator: '10.0.0.1:99999', heartbeat_interval_ms: 1.5, extra: true }, 'a.yaml'),
    { instanceOf: InvalidConfigError },
  );
  t.deepEqual(err!.problems.map((p) => p.path).sort(), ['coordinator', 'extra', 'heartbeat_interval_ms', 'host_id']);
});

test('agent shadow_image_dir: <data_dir>/shadow by default, else an absolute path QEMU can take as mem-path', (t) => {
  t.is(parseAgentConfig({ data_dir: '/srv/umbra' }, 'a.yaml').shadowImageDir, '/srv/umbra/shadow');
  t.is(parseAgentConfig({}, 'a.yaml').shadowImageDir, '/var/lib/umbra/agent/shadow');
  t.is(parseAgentConfig({ shadow_image_dir: '/dev/shm/umbra' }, 'a.yaml').shadowImageDir, '/dev/shm/umbra');
  for (const [dir, reason] of [['shm/umbra', /absolute path/], ['/dev/shm/a,b', /comma/], [7, /string/]] as const) {
    const err = t.throws(() => parseAgentConfig({ shadow_image_dir: dir }, 'a.yaml'), { instanceOf: InvalidConfigError });
    t.deepEqual(err!.problems.map((p) => p.path), ['shadow_image_dir']);
    t.regex(err!.problems[0].reason, reason);
  }
});

test('a config that is not a mapping is refused', (t) => {
  const err = t.throws(() => parseAgentConfig(['a'], 'a.yaml'), { instanceOf: InvalidConfigError });
  t.is(err!.problems[0].reason, 'must be a mapping');
});

// The agent's `replication` config section: defaults, VM locators, and each mistake named by path.
import test from 'ava';
import { ConfigReader } from '../../../shared/config-reader';
import { parseReplicationAgentConfig } from '../../../agent/replication/replication-config';

function parse(raw: unknown) {
  const r = new ConfigReader('test');
  const c = parseReplicationAgentConfig(r, raw, 'replication');
  return { c, problems: r.problems.map((p) => `${p.path}: ${p.reason}`) };
}

test('an absent section gives defaults: every tracker best first, no VMs', (t) => {
  const { c, problems } = parse(undefined);
  t.deepEqual(problems, []);
  t.deepEqual(c.trackers, ['uffd-wp', 'soft-dirty', 'hash']);
  t.is(c.bandwidthBudgetBytesPerSec, 0);
  t.is(c.codec, 'brotli-0');
  t.is(c.flushCodec, 'brotli-0', 'guest pages compress well: measured faster for the flush too');
  t.deepEqual(c.vms, []);
});

test('VMs by pid, pid file, QMP socket or memory path', (t) => {
  const { c, problems } = parse({
    bandwidth_budget_bytes_per_s: 100_000_000,
    trackers: ['hash'],
    vms: [
      { id: 'a', pid: 42, memory_bytes: 1 << 30, memory_path: 'memfd:pc.ram' },
      { id: 'b', pid_file: '/run/b.pid', memory_bytes: 1 << 20 },
      { id: 'c', qmp_socket: '/run/c.qmp', memory_bytes: 1 << 20 },
      { id: 'd', memory_path: '/dev/shm/d.ram', memory_bytes: 1 << 20 },
    ],
  });
  t.deepEqual(problems, []);
  t.deepEqual(c.vms[0], { id: 'a', pid: 42, memoryBytes: 1 << 30, memoryPath: 'memfd:pc.ram' });
  t.is(c.vms[1].pidFile, '/run/b.pid');
  t.is(c.vms[2].qmpSocket, '/run/c.qmp');
  t.is(c.vms[3].memoryPath, '/dev/shm/d.ram');
  t.deepEqual(c.trackers, ['hash']);
});

test('mistakes are reported with their key path', (t) => {
  const { problems } = parse({
    trackers: ['uffd', 'hash'],
    min_round_interval_ms: 500,
    max_round_interval_ms: 100,
    surprise: 1,
    vms: [
      { id: 'a', pid: 1, qmp_socket: '/x', memory_bytes: 4096 },
      { id: 'b', memory_bytes: 4096 },
      { id: 'b', pid: 2 },
      { id: 'bad id', pid: 3, memory_bytes: 4096 },
    ],
  });
  const has = (re: RegExp) => t.true(problems.some((p) => re.test(p)), `${re} in ${problems.join(' | ')}`);
  has(/^replication\.surprise: unknown key/);
  has(/^replication\.trackers\[0\]: must be one of/);
  has(/^replication\.max_round_interval_ms: must be at least/);
  has(/^replication\.vms\[0\]: give one of pid, pid_file, qmp_socket/);
  has(/^replication\.vms\[1\]: needs one of/);
  has(/^replication\.vms\[2\]\.memory_bytes: is required/);
  has(/^replication\.vms\[2\]\.id: duplicate VM id 'b'/);
  has(/^replication\.vms\[3\]\.id: must be 1-128/);
});

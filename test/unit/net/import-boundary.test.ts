// Layering of agent/net: only netlink-*.ts may import `netlink`, only garp-sender.ts may import
// `cap`, and the pure files import no Node I/O module at all.
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = join(__dirname, '..', '..', '..', '..', 'agent', 'net');
const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
const importsOf = (f: string) => [...readFileSync(join(dir, f), 'utf8').matchAll(/(?:from\s+|require\()\s*'([^']+)'/g)].map((m) => m[1]);

test('sources were found', (t) => {
  t.true(files.includes('ip-applier.ts'));
});

test('only netlink-*.ts import the netlink package', (t) => {
  for (const f of files) if (importsOf(f).includes('netlink')) t.regex(f, /^netlink-/, f);
});

test('only garp-sender.ts imports cap', (t) => {
  for (const f of files) if (importsOf(f).includes('cap')) t.is(f, 'garp-sender.ts');
});

test('pure logic files import no I/O modules', (t) => {
  const pure = ['ip-applier.ts', 'fencing-guard.ts', 'arp-frame.ts', 'ndp-frame.ts', 'ip-activation-spec.ts', 'ports.ts', 'netlink-errors.ts'];
  for (const f of pure) {
    const bad = importsOf(f).filter((m) => m.startsWith('node:') || ['netlink', 'cap', 'level', 'fs', 'child_process', 'net', 'dgram'].includes(m));
    t.deepEqual(bad, [], f);
  }
});

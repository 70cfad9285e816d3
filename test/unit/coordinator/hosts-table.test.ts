// umbractl hosts: the table marks a host whose state is the stored one (not heard from since the
// coordinator restarted, restart grace running), from the wire field, in the table and the JSON shape.
import test from 'ava';
import { hostToWire } from '../../../coordinator/api/host-messages';
import { hostsTable, listedHostFromWire } from '../../../coordinator/cli/hosts-command';
import { EMPTY_USAGE, type HostRecord } from '../../../shared/host-types';
import { hostFacts } from '../../fakes/host-facts';

const NOW = 1_800_000_000_000;

function record(id: string): HostRecord {
  return { facts: hostFacts(id), state: 'HOST_STATE_UP', registered_at_unix_ms: NOW - 60_000, last_heartbeat_unix_ms: NOW - 5_000, state_changed_at_unix_ms: NOW - 60_000, usage: EMPTY_USAGE };
}

test('a host awaiting contact after a coordinator restart is marked; one heard from is not', (t) => {
  const hosts = [listedHostFromWire(hostToWire(record('h1'), true)), listedHostFromWire(hostToWire(record('h2')))];
  t.deepEqual(hosts.map((h) => h.awaiting_contact), [true, false]);
  const rows = hostsTable(hosts, NOW).split('\n');
  t.regex(rows.find((r) => r.startsWith('h1'))!, /\bup \(awaiting contact\)/);
  t.regex(rows.find((r) => r.startsWith('h2'))!, /\bup\b/);
  t.notRegex(rows.find((r) => r.startsWith('h2'))!, /awaiting/);
});

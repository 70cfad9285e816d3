// Migrations as the audit log records them (what the ranker's history counts): one per switchover.
import test from 'ava';
import { auditedMigration } from '../../../coordinator/migrate/switchover-event';

const entry = (kind: string, attributes: Record<string, string>, message = 'm') => ({ kind, vm_id: 'vm1', message, attributes });

test('a switchover entry is a migration with its hosts and outcome', (t) => {
  t.deepEqual(auditedMigration(entry('EVENT_KIND_SWITCHOVER', { status: 'SUCCEEDED', source_host: 'a', destination_host: 'b' })), { vmId: 'vm1', sourceHostId: 'a', destinationHostId: 'b', ok: true });
  t.deepEqual(auditedMigration(entry('EVENT_KIND_SWITCHOVER', { status: 'ROLLED_BACK', source_host: 'a', destination_host: 'b' }, 'resume failed')), {
    vmId: 'vm1',
    sourceHostId: 'a',
    destinationHostId: 'b',
    ok: false,
    error: 'resume failed',
  });
  t.like(auditedMigration(entry('EVENT_KIND_ALERT', { status: 'FAILED', source_host: 'a', destination_host: 'b' })), { ok: false });
});

test('the IP switch inside a VM switchover is not counted (the VM switchover entry is); other entries are not migrations', (t) => {
  t.is(auditedMigration(entry('EVENT_KIND_SWITCHOVER', { status: 'SUCCEEDED', source_host: 'a', destination_host: 'b', part_of: 'vm_switchover' })), undefined);
  t.like(auditedMigration(entry('EVENT_KIND_SWITCHOVER', { status: 'SUCCEEDED', kind: 'vm', source_host: 'a', destination_host: 'b' })), { ok: true });
  t.is(auditedMigration(entry('EVENT_KIND_ALERT', { reason: 'address active on two hosts' })), undefined);
  t.is(auditedMigration(entry('EVENT_KIND_SHADOW_PLACED', { status: 'SUCCEEDED', source_host: 'a', destination_host: 'b' })), undefined);
});

// `umbractl policy set` flags applied to the current policy: groups defined, replaced, removed;
// the failure-domain rule set; bad flags refused with the flag named.
import test from 'ava';
import { applyPolicyFlags, type PolicyFlags } from '../../../coordinator/cli/predict-command';
import { defaultPolicy, policyFromWire, policyToWire } from '../../../coordinator/predict/prediction-policy';
import { isUmbraError } from '../../../shared/errors';

const current = () => policyToWire(defaultPolicy());

test('--group defines a group (and replaces one of the same name); --remove-group drops one; the coordinator accepts the result', (t) => {
  let p = applyPolicyFlags(current(), { group: ['db=keep-apart:db1,db2', 'shop=keep-together:web1,db1'] });
  t.deepEqual(p.affinity_groups, [
    { name: 'db', kind: 'AFFINITY_KIND_KEEP_APART', vm_ids: ['db1', 'db2'] },
    { name: 'shop', kind: 'AFFINITY_KIND_KEEP_TOGETHER', vm_ids: ['web1', 'db1'] },
  ]);
  p = applyPolicyFlags(p, { group: ['db=keep-apart:db1,db2,db3'], removeGroup: ['shop'] });
  t.deepEqual(p.affinity_groups, [{ name: 'db', kind: 'AFFINITY_KIND_KEEP_APART', vm_ids: ['db1', 'db2', 'db3'] }]);
  t.deepEqual(policyFromWire(p).groups, [{ name: 'db', kind: 'keep-apart', vmIds: ['db1', 'db2', 'db3'] }]);
  t.is(applyPolicyFlags(current(), { automatic: 'true' }).affinity_groups.length, 0, 'other flags leave groups alone');
});

test('malformed --group and an unknown --remove-group are refused, naming the flag', (t) => {
  const cases: Array<[PolicyFlags, string]> = [
    [{ group: ['db'] }, '--group'],
    [{ group: ['db=apart:db1'] }, '--group'],
    [{ group: ['db=keep-apart:'] }, '--group'],
    [{ removeGroup: ['nope'] }, '--remove-group'],
    [{ otherFailureDomain: ' , ' }, '--other-failure-domain'],
  ];
  for (const [flags, field] of cases) {
    const err = t.throws(() => applyPolicyFlags(current(), flags));
    t.true(isUmbraError(err) && err.reason === 'INVALID_ARGUMENT' && err.message.startsWith(field), err?.message);
  }
});

test('--other-failure-domain: all, a VM list (replacing the last), none; the coordinator accepts each', (t) => {
  let p = applyPolicyFlags(current(), { otherFailureDomain: 'all' });
  t.deepEqual(p.other_failure_domain, { all_vms: true, vm_ids: [] });
  t.deepEqual(policyFromWire(p).otherFailureDomain, { allVms: true, vmIds: [] });
  p = applyPolicyFlags(p, { otherFailureDomain: 'db1, db2' });
  t.deepEqual(p.other_failure_domain, { all_vms: false, vm_ids: ['db1', 'db2'] });
  t.deepEqual(policyFromWire(p).otherFailureDomain, { allVms: false, vmIds: ['db1', 'db2'] });
  t.deepEqual(applyPolicyFlags(p, { automatic: 'true' }).other_failure_domain, p.other_failure_domain, 'other flags leave it alone');
  t.deepEqual(applyPolicyFlags(p, { otherFailureDomain: 'none' }).other_failure_domain, { all_vms: false, vm_ids: [] });
});

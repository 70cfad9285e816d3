// planShadows: top-N over the threshold, manual shadows kept and not counted, retirements.
import test from 'ava';
import { planShadows } from '../../../coordinator/shadow/shadow-placement';
import type { RankedDestination } from '../../../coordinator/rank/types';

const ranked = (scores: Array<[string, number]>): RankedDestination[] =>
  scores.map(([hostId, score], i) => ({ hostId, rank: i + 1, score, breakdown: {} as RankedDestination['breakdown'], predictedMigrationSeconds: 1, reasons: [] }));

test('places on the top N whose score passes the threshold', (t) => {
  const plan = planShadows(ranked([['b', 0.9], ['c', 0.8], ['d', 0.7], ['e', 0.2]]), [], { shadowingThreshold: 0.5, maxShadowedVms: 2 });
  t.deepEqual(plan.place.map((p) => p.hostId), ['b', 'c']);
  t.deepEqual(plan.retire, []);
});

test('a host below the threshold gets no shadow even when fewer than N pass', (t) => {
  const plan = planShadows(ranked([['b', 0.9], ['e', 0.2]]), [], { shadowingThreshold: 0.5, maxShadowedVms: 3 });
  t.deepEqual(plan.place.map((p) => p.hostId), ['b']);
});

test('automatic shadows that fall out are retired; kept ones are not placed again', (t) => {
  const plan = planShadows(ranked([['c', 0.9], ['d', 0.8], ['b', 0.3]]), [{ hostId: 'b', manual: false }, { hostId: 'c', manual: false }], { shadowingThreshold: 0.5, maxShadowedVms: 2 });
  t.deepEqual(plan.place.map((p) => p.hostId), ['d']);
  t.deepEqual(plan.retire, ['b']);
  t.deepEqual(plan.keep, ['c']);
});

test('manual shadows are never retired and do not take an automatic slot', (t) => {
  const plan = planShadows(ranked([['b', 0.9], ['c', 0.8], ['d', 0.7]]), [{ hostId: 'b', manual: true }, { hostId: 'x', manual: true }], { shadowingThreshold: 0.5, maxShadowedVms: 2 });
  t.deepEqual(plan.place.map((p) => p.hostId), ['c', 'd']);
  t.deepEqual(plan.retire, []);
  t.true(plan.keep.includes('x'));
});

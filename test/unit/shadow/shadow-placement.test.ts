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

test('a held shadow (host liveness not known yet) is kept, never retired, and fills one of the N slots', (t) => {
  // b's host is unknown (not ranked at all): it keeps its shadow and c, ranked first, is not added.
  const one = planShadows(ranked([['c', 0.9], ['d', 0.8]]), [{ hostId: 'b', manual: false }], { shadowingThreshold: 0.5, maxShadowedVms: 1 }, new Set(['b']));
  t.deepEqual(one, { place: [], retire: [], keep: ['b'], held: ['b'] });
  // With two slots, the one left goes to the best ranked host; a shadow that fell out is still retired.
  const two = planShadows(ranked([['c', 0.9], ['d', 0.8]]), [{ hostId: 'b', manual: false }, { hostId: 'e', manual: false }], { shadowingThreshold: 0.5, maxShadowedVms: 2 }, new Set(['b']));
  t.deepEqual(two.place.map((p) => p.hostId), ['c']);
  t.deepEqual(two.retire, ['e']);
  t.deepEqual(two.keep, ['b']);
  // Without the hold, the same inputs retire b.
  t.deepEqual(planShadows(ranked([['c', 0.9], ['d', 0.8]]), [{ hostId: 'b', manual: false }], { shadowingThreshold: 0.5, maxShadowedVms: 1 }).retire, ['b']);
});

test('holds beyond N are all kept (nothing is retired without a verdict); held manual shadows stay manual', (t) => {
  const plan = planShadows(ranked([['d', 0.9]]), [{ hostId: 'b', manual: false }, { hostId: 'c', manual: false }, { hostId: 'x', manual: true }], { shadowingThreshold: 0.5, maxShadowedVms: 1 }, new Set(['b', 'c', 'x']));
  t.deepEqual(plan.place, []);
  t.deepEqual(plan.retire, []);
  t.deepEqual(plan.keep.sort(), ['b', 'c', 'x']);
  t.deepEqual(plan.held, ['b', 'c']);
});

// The simple ranker: same hard constraints, score = headroom left at the forecast peak only.

import { prepare, rankPrepared } from './ranking-engine';
import { HostView, RankContext, Ranker, RankResult, VmView } from './types';

export class CapacityHeadroomRanker implements Ranker {
  readonly name = 'capacity-headroom';

  rank(vm: VmView, hosts: readonly HostView[], context: RankContext = {}): RankResult {
    return rankPrepared(vm, prepare(hosts, context, 'capacity'), context);
  }

  rankMany(vms: readonly VmView[], hosts: readonly HostView[], context: RankContext = {}): RankResult[] {
    const p = prepare(hosts, context, 'capacity');
    return vms.map((vm) => rankPrepared(vm, p, context));
  }
}

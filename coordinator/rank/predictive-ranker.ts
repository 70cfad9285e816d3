// The product's ranker: constraints, then headroom at the forecast peak, CPU similarity,
// predicted migration cost, warm shadows, migration history, host health and keep-together peers.

import { prepare, rankPrepared } from './ranking-engine';
import { HostView, RankContext, Ranker, RankResult, VmView } from './types';

export class PredictiveRanker implements Ranker {
  readonly name = 'predictive';

  rank(vm: VmView, hosts: readonly HostView[], context: RankContext = {}): RankResult {
    return rankPrepared(vm, prepare(hosts, context, 'predictive'), context);
  }

  /** Ranks many VMs against the same hosts (hosts compiled once); rejections are counted, not listed. */
  rankMany(vms: readonly VmView[], hosts: readonly HostView[], context: RankContext = {}): RankResult[] {
    const p = prepare(hosts, context, 'predictive');
    return vms.map((vm) => rankPrepared(vm, p, context));
  }
}

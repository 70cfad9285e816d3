// One evaluation round of migration advice over every profiled VM: in automatic mode a VM whose
// advice is `migrate` gets a MIGRATION_RECOMMENDED event with the reasons and is handed to the
// migration trigger (registered later by the switchover module), once per episode: again only
// after its advice left `migrate` or the cooldown passed. Pure logic behind small ports.

import { errorMessage } from '../../shared/errors';
import type { HostRecord } from '../../shared/host-types';
import type { MigrationAdvice } from './migration-advisor';
import type { PredictionHub } from './prediction-hub';

/** A VM recommended again only after this long if its advice stays `migrate`. */
export const RECOMMEND_COOLDOWN_MS = 10 * 60_000;

export interface MigrationRequest {
  vmId: string;
  sourceHostId: string;
  destinationHostId: string;
  advice: MigrationAdvice;
}

/** How a trigger ended; `retry` on a SKIPPED one: only a busy slot stood in the way. */
export interface MigrationTriggerResult {
  outcome: string;
  retry?: boolean;
}

/**
 * Starts a migration. Outcomes reach the history through the switchover events, not through here;
 * a trigger that did not start one only because others were running resolves with
 * `{ outcome: 'SKIPPED', retry: true }`, and the VM stays eligible for the next round.
 */
export type MigrationTrigger = (req: MigrationRequest) => Promise<MigrationTriggerResult | void>;

export interface RecommendationEvent {
  kind: 'EVENT_KIND_MIGRATION_RECOMMENDED';
  host_id: string;
  vm_id: string;
  message: string;
  attributes: Record<string, string>;
}

export interface AutoMigrationPorts {
  hub: PredictionHub;
  hosts: () => HostRecord[];
  appendEvent: (e: RecommendationEvent) => Promise<unknown>;
  trigger: () => MigrationTrigger | undefined;
  onError: (message: string) => void;
  now?: () => number;
}

export interface RoundOutcome {
  evaluated: number;
  recommended: string[];
  triggered: string[];
}

export class AutoMigration {
  private readonly lastRecommendedMs = new Map<string, number>();

  constructor(private readonly p: AutoMigrationPorts) {}

  async round(): Promise<RoundOutcome> {
    const out: RoundOutcome = { evaluated: 0, recommended: [], triggered: [] };
    const hosts = this.p.hosts();
    const now = (this.p.now ?? Date.now)();
    for (const vmId of this.p.hub.knownVms()) {
      let advice: MigrationAdvice;
      let sourceHostId: string;
      try {
        const pred = this.p.hub.vmPrediction(vmId, hosts);
        advice = pred.advice;
        sourceHostId = pred.hostId;
      } catch (err) {
        this.p.onError(`advice for ${vmId}: ${errorMessage(err)}`);
        continue;
      }
      out.evaluated++;
      if (advice.decision !== 'migrate' || !advice.destinationHostId) {
        this.lastRecommendedMs.delete(vmId);
        continue;
      }
      const last = this.lastRecommendedMs.get(vmId);
      if (last !== undefined && now - last < RECOMMEND_COOLDOWN_MS) continue;
      this.lastRecommendedMs.set(vmId, now);
      const destinationHostId = advice.destinationHostId;
      await this.p.appendEvent({
        kind: 'EVENT_KIND_MIGRATION_RECOMMENDED',
        host_id: sourceHostId,
        vm_id: vmId,
        message: `migrate ${vmId} ${sourceHostId} -> ${destinationHostId} (probability ${(advice.probability * 100).toFixed(0)}%): ${advice.reasons.join('; ')}`,
        attributes: {
          source_host: sourceHostId,
          destination_host: destinationHostId,
          probability: advice.probability.toFixed(3),
          net_benefit: advice.netBenefit.toFixed(3),
          reasons: advice.reasons.join('; '),
        },
      });
      out.recommended.push(vmId);
      const trigger = this.p.trigger();
      if (!trigger) continue;
      out.triggered.push(vmId);
      // The migration runs on without holding up the round. One not started for lack of a slot
      // does not end the episode: the VM is recommended and handed over again next round.
      trigger({ vmId, sourceHostId, destinationHostId, advice }).then(
        (result) => {
          if (result?.outcome === 'SKIPPED' && result.retry && this.lastRecommendedMs.get(vmId) === now) this.lastRecommendedMs.delete(vmId);
        },
        (err) => this.p.onError(`migration trigger for ${vmId}: ${errorMessage(err)}`),
      );
    }
    return out;
  }
}

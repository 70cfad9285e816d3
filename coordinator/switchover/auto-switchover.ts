// Automatic mode's migration trigger: a MIGRATION_RECOMMENDED decision starts the switchover the
// VM takes (full VM or IP-only), to the recommended host when its shadow is ready, else to the
// best one. Guards against storms: none while a switchover of the VM runs, one per VM per
// cooldown whatever its outcome, at most `maxConcurrent` automatic ones at once. The audit log
// records each trigger and its outcome (EVENT_KIND_MIGRATION_TRIGGERED).
import type { Logger } from 'pino';
import { errorMessage, isUmbraError } from '../../shared/errors';
import type { EventLog } from '../core/event-log';
import type { MigrationRequest } from '../predict/auto-migration';
import type { MigrationRoutes } from './migration-routes';

export const DEFAULT_AUTO_COOLDOWN_MS = 10 * 60_000;
export const DEFAULT_AUTO_MAX_CONCURRENT = 1;

export interface AutoSwitchoverDeps {
  routes: Pick<MigrationRoutes, 'run' | 'isRunning' | 'knows'>;
  events: Pick<EventLog, 'append'>;
  logger: Logger;
  /** After an automatic trigger, the VM is not triggered again for this long. */
  cooldownMs?: number;
  maxConcurrent?: number;
  now?: () => number;
}

export type AutoOutcome =
  /** retry: only the concurrency cap stood in the way, so the VM stays eligible next round. */
  | { outcome: 'SKIPPED'; reason: string; retry: boolean }
  | { outcome: 'REFUSED' | 'ERROR'; error: string }
  /** setAside: why the recommended host gave way to `destinationHost` (empty when it took the VM). */
  | { outcome: 'SUCCEEDED' | 'ROLLED_BACK' | 'FAILED'; destinationHost: string; switchoverId: string; error: string; setAside: string };

export class AutoSwitchover {
  private readonly lastTriggerMs = new Map<string, number>();
  private active = 0;
  private readonly cooldownMs: number;
  private readonly maxConcurrent: number;
  private readonly now: () => number;

  constructor(private readonly d: AutoSwitchoverDeps) {
    this.cooldownMs = d.cooldownMs ?? DEFAULT_AUTO_COOLDOWN_MS;
    this.maxConcurrent = d.maxConcurrent ?? DEFAULT_AUTO_MAX_CONCURRENT;
    this.now = d.now ?? Date.now;
  }

  /** The MigrationTrigger the prediction module calls; resolves when the switchover has ended. */
  readonly trigger = (req: MigrationRequest): Promise<AutoOutcome> => this.run(req);

  private skipReason(vmId: string, now: number): { reason: string; retry: boolean } | undefined {
    // A profiled workload that is no VM of ours (e.g. a process watched by pid file): advice only.
    if (!this.d.routes.knows(vmId)) return { reason: 'the coordinator has no IP configuration of it: nothing to switch over', retry: false };
    if (this.d.routes.isRunning(vmId)) return { reason: 'a switchover of it is running', retry: false };
    const last = this.lastTriggerMs.get(vmId);
    if (last !== undefined && now - last < this.cooldownMs) return { reason: `triggered ${Math.round((now - last) / 1000)} s ago (cooldown ${Math.round(this.cooldownMs / 1000)} s)`, retry: false };
    if (this.active >= this.maxConcurrent) return { reason: `${this.active} automatic switchover(s) running (at most ${this.maxConcurrent})`, retry: true };
    return undefined;
  }

  private async run(req: MigrationRequest): Promise<AutoOutcome> {
    const { vmId, sourceHostId: source, destinationHostId: recommended } = req;
    const now = this.now();
    const skip = this.skipReason(vmId, now);
    if (skip) {
      this.d.logger.info({ vmId, recommended, reason: skip.reason }, 'automatic switchover not triggered');
      return { outcome: 'SKIPPED', ...skip };
    }
    this.lastTriggerMs.set(vmId, now);
    this.active++;
    try {
      const reasons = req.advice.reasons.join('; ');
      await this.audit(source, vmId, `automatic switchover of ${vmId} from ${source} triggered (recommended ${recommended || 'best'})${reasons ? `: ${reasons}` : ''}`, {
        outcome: 'TRIGGERED',
        source_host: source,
        recommended_host: recommended,
        probability: req.advice.probability.toFixed(3),
        reasons,
      });
      let out: AutoOutcome;
      try {
        const { event, destination } = await this.d.routes.run(vmId, recommended, { orBest: true });
        out = { outcome: event.status, destinationHost: event.destination_host, switchoverId: event.id, error: event.error, setAside: destination.setAside ?? '' };
      } catch (err) {
        out = { outcome: isUmbraError(err) && (err.reason === 'FAILED_PRECONDITION' || err.reason === 'NOT_FOUND') ? 'REFUSED' : 'ERROR', error: errorMessage(err) };
      }
      const detail = 'destinationHost' in out ? `${out.outcome} (${out.switchoverId} -> ${out.destinationHost}${out.setAside ? `; ${out.setAside}` : ''})` : out.outcome;
      const error = 'error' in out ? out.error : '';
      await this.audit('destinationHost' in out && out.outcome === 'SUCCEEDED' ? out.destinationHost : source, vmId, `automatic switchover of ${vmId}: ${detail}${error ? `: ${error}` : ''}`, {
        outcome: out.outcome,
        source_host: source,
        recommended_host: recommended,
        destination_host: 'destinationHost' in out ? out.destinationHost : '',
        switchover_id: 'switchoverId' in out ? out.switchoverId : '',
        set_aside: 'setAside' in out ? out.setAside : '',
        error,
      });
      this.d.logger.info({ vmId, source, recommended, ...out }, 'automatic switchover ended');
      return out;
    } finally {
      this.active--;
    }
  }

  private async audit(hostId: string, vmId: string, message: string, attributes: Record<string, string>): Promise<void> {
    await this.d.events
      .append({ kind: 'EVENT_KIND_MIGRATION_TRIGGERED', host_id: hostId, vm_id: vmId, message, attributes })
      .catch((err) => this.d.logger.error({ vmId, err: errorMessage(err) }, 'audit of an automatic switchover failed'));
  }
}

// The shadowing knobs an operator sets through the prediction policy (`umbractl policy set`:
// max_shadowed_vms, shadowing_threshold, shadowing_refresh_interval) as the shadow manager reads
// them: a small source interface (the prediction module behind it when that module runs), the
// refresh loop whose interval can change, and the binding that applies each new policy to both.
import type { Logger } from 'pino';
import type { RunningCoordinatorModule } from '../coordinator-module';
import type { PlacementPolicy } from './shadow-placement';

export interface ShadowingPolicy extends PlacementPolicy {
  refreshIntervalMs: number;
}

/** Where the operator's shadowing policy comes from. */
export interface ShadowingPolicySource {
  /** The operator's policy, or undefined while none was set (the module's config applies then). */
  current(): ShadowingPolicy | undefined;
  /** Called with every policy the operator sets; returns the unsubscribe function. */
  onChange(fn: (p: ShadowingPolicy) => void): () => void;
}

/** The part of a prediction policy this module reads (structural: no import of coordinator/predict). */
interface PolicyKnobs {
  shadowingThreshold: number;
  maxShadowedVms: number;
  shadowingRefreshIntervalMs: number;
}

interface PolicyPublisher {
  operatorPolicy(): PolicyKnobs | undefined;
  onPolicySet(fn: (p: PolicyKnobs) => void): () => void;
}

function knobs(p: PolicyKnobs): ShadowingPolicy {
  return { shadowingThreshold: p.shadowingThreshold, maxShadowedVms: p.maxShadowedVms, refreshIntervalMs: p.shadowingRefreshIntervalMs };
}

/** The prediction module's policy as a source, when that module runs (it starts before ipshadow). */
export function predictionShadowingPolicy(modules: ReadonlyMap<string, RunningCoordinatorModule>): ShadowingPolicySource | undefined {
  const p = modules.get('prediction') as Partial<PolicyPublisher> | undefined;
  if (typeof p?.operatorPolicy !== 'function' || typeof p.onPolicySet !== 'function') return undefined;
  const pub = p as PolicyPublisher;
  return {
    current: () => {
      const c = pub.operatorPolicy();
      return c ? knobs(c) : undefined;
    },
    onChange: (fn) => pub.onPolicySet((c) => fn(knobs(c))),
  };
}

export interface LoopTimers {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

const REAL_TIMERS: LoopTimers = {
  setInterval: (fn, ms) => {
    const h = setInterval(fn, ms);
    h.unref();
    return h;
  },
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout),
};

/** Runs `round` every interval; a new interval re-arms the timer at once. */
export class ShadowRefreshLoop {
  private handle: unknown;
  private ms: number;

  constructor(private readonly round: () => void, intervalMs: number, private readonly timers: LoopTimers = REAL_TIMERS) {
    this.ms = intervalMs;
    this.handle = timers.setInterval(round, intervalMs);
  }

  get intervalMs(): number {
    return this.ms;
  }

  setIntervalMs(ms: number): void {
    if (ms === this.ms || this.handle === undefined) return;
    this.timers.clearInterval(this.handle);
    this.ms = ms;
    this.handle = this.timers.setInterval(this.round, ms);
  }

  close(): void {
    if (this.handle !== undefined) this.timers.clearInterval(this.handle);
    this.handle = undefined;
  }
}

export interface PolicyTargets {
  manager: { setPolicy(p: PlacementPolicy): void };
  loop: { setIntervalMs(ms: number): void };
  /** A placement round right away, so a new N or threshold shows without waiting an interval. */
  refreshNow(): void;
  logger: Logger;
}

/** Applies the source's current policy (if any) and every later one; returns the unsubscribe function. */
export function bindShadowingPolicy(source: ShadowingPolicySource, t: PolicyTargets): () => void {
  const apply = (p: ShadowingPolicy, why: string) => {
    t.manager.setPolicy({ shadowingThreshold: p.shadowingThreshold, maxShadowedVms: p.maxShadowedVms });
    t.loop.setIntervalMs(p.refreshIntervalMs);
    t.logger.info({ maxShadowedVms: p.maxShadowedVms, shadowingThreshold: p.shadowingThreshold, refreshIntervalMs: p.refreshIntervalMs, why }, 'shadowing policy applied');
  };
  const initial = source.current();
  if (initial) apply(initial, 'stored operator policy');
  return source.onChange((p) => {
    apply(p, 'operator policy set');
    t.refreshNow();
  });
}

// Coordinator module `prediction`: the PredictionEngine fed by agents' telemetry (PredictionService),
// the global forecaster fitted from traces when configured, the persisted policy, periodic migration
// advice (automatic mode: MIGRATION_RECOMMENDED events and the registered migration trigger),
// migration history from switchover events, and a forecast-aware Ranker for shadow placement.
import { errorMessage } from '../../shared/errors';
import { predictionService } from '../api/prediction-service';
import type { CoordinatorModuleDefinition, RunningCoordinatorModule } from '../coordinator-module';
import { auditedMigration } from '../migrate/switchover-event';
import { CapacityHeadroomRanker } from '../rank/capacity-headroom-ranker';
import type { Ranker } from '../rank/types';
import { AutoMigration, type MigrationTrigger } from './auto-migration';
import { fitInWorker } from './forecaster-fit-worker';
import { type PredictionConfig, parsePredictionConfig } from './prediction-config';
import { PredictionEngine } from './prediction-engine';
import { PredictionHub } from './prediction-hub';
import { defaultPolicy, type PredictionPolicy } from './prediction-policy';
import { horizonSteps } from './time-series';

const POLICY_KEY = 'prediction/policy';
const LOCAL_FORECASTER = 'window quantile (local)';

/** What other modules may use of a running prediction module (ctx.modules.get('prediction')). */
export interface RunningPredictionModule extends RunningCoordinatorModule {
  hub: PredictionHub;
  /** The ranker shadow placement should use. */
  ranker: Ranker;
  /** Registers what starts a migration when automatic mode advises one (the switchover module). */
  setMigrationTrigger(fn: MigrationTrigger | undefined): void;
  /** The policy an operator set (persisted), undefined while only defaults apply. */
  operatorPolicy(): PredictionPolicy | undefined;
  /** Listens to every policy set (shadow placement applies its knobs); returns the unsubscribe. */
  onPolicySet(fn: (p: PredictionPolicy) => void): () => void;
}

/** The prediction module's ranker, when that module runs (for modules started after it). */
export function predictionRanker(modules: ReadonlyMap<string, RunningCoordinatorModule>): Ranker | undefined {
  return (modules.get('prediction') as Partial<RunningPredictionModule> | undefined)?.ranker;
}

export const predictionCoordinatorModule: CoordinatorModuleDefinition<PredictionConfig> = {
  name: 'prediction',
  parseConfig: parsePredictionConfig,
  async start(config, ctx): Promise<RunningPredictionModule> {
    const log = ctx.logger;
    const engine = new PredictionEngine({ horizonMinutes: config.horizonMinutes, sampleIntervalMinutes: config.sampleIntervalMinutes });
    const hub = new PredictionHub({ engine, useHostLoad: config.useHostLoad, saturationFraction: config.saturationFraction });
    const stored = await ctx.store.get<PredictionPolicy>(POLICY_KEY);
    const initial = defaultPolicy();
    initial.migration.automatic = config.automatic;
    initial.migration.netBenefitThreshold = config.threshold;
    hub.setPolicy(stored ?? initial);
    let operatorPolicy = stored;
    const policyListeners = new Set<(p: PredictionPolicy) => void>();
    let forecasterName = LOCAL_FORECASTER;
    let closed = false;

    // Fitting takes seconds of CPU: a worker thread does it, the local model serves until then.
    const fitJob = config.fitTracesDir ? fitInWorker(config.fitTracesDir, horizonSteps(config.horizonMinutes, config.sampleIntervalMinutes), config.fitTrees) : undefined;
    const t0 = Date.now();
    fitJob?.done.then(
      (o) => {
        if (closed) return;
        engine.setForecaster(o.forecaster);
        forecasterName = o.forecaster.name;
        log.info({ traces: o.series, malformedLines: o.malformedLines, fitMs: Date.now() - t0, forecaster: o.forecaster.name }, 'global forecaster fitted');
      },
      (err) => !closed && log.error({ dir: config.fitTracesDir, err: errorMessage(err) }, 'fitting the global forecaster failed; the local model serves'),
    );

    // Outcomes of switchovers (manual or automatic) feed the ranker's history.
    const offEvents = ctx.events.subscribe((e) => {
      const m = auditedMigration(e);
      if (m) hub.recordMigration(m.vmId, m.sourceHostId, m.destinationHostId, m.ok, m.error);
    });

    let trigger: MigrationTrigger | undefined;
    const auto = new AutoMigration({
      hub,
      hosts: () => ctx.hosts.list(),
      appendEvent: (ev) => ctx.events.append(ev),
      trigger: () => (hub.policy.migration.automatic ? trigger : undefined),
      onError: (m) => log.warn({ err: m }, 'migration advice'),
    });
    let evaluating: Promise<unknown> | undefined;
    const timer = setInterval(() => {
      if (evaluating) return;
      evaluating = auto
        .round()
        .then((o) => o.recommended.length > 0 && log.info(o, 'migrations recommended'))
        .catch((err) => log.error({ err: errorMessage(err) }, 'migration advice round failed'))
        .finally(() => (evaluating = undefined));
    }, config.evaluationIntervalMs);
    timer.unref();

    const ranker = config.shadowRanker === 'predictive' ? hub.forecastRanker() : new CapacityHeadroomRanker();
    log.info({ horizonMinutes: config.horizonMinutes, sampleIntervalMinutes: config.sampleIntervalMinutes, fitTracesDir: config.fitTracesDir || undefined, automatic: hub.policy.migration.automatic, shadowRanker: ranker.name }, 'prediction started');

    return {
      hub,
      ranker,
      setMigrationTrigger(fn) {
        trigger = fn;
      },
      operatorPolicy: () => operatorPolicy,
      onPolicySet(fn) {
        policyListeners.add(fn);
        return () => void policyListeners.delete(fn);
      },
      services: [
        predictionService({
          hub,
          hosts: () => ctx.hosts.list(),
          setPolicy: async (p) => {
            await ctx.store.put(POLICY_KEY, p);
            hub.setPolicy(p);
            operatorPolicy = p;
            for (const fn of policyListeners) fn(p);
            log.info({ automatic: p.migration.automatic, threshold: p.migration.netBenefitThreshold, windows: p.migration.allowedWindows?.length ?? 0 }, 'prediction policy set');
          },
          forecasterName: () => forecasterName,
          logger: log,
        }),
      ],
      async close() {
        closed = true;
        clearInterval(timer);
        offEvents();
        await evaluating;
        await fitJob?.close();
      },
    };
  },
};

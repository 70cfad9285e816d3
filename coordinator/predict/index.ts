// Public surface of the predictor for the coordinator's API layer and umbractl.

export { PredictionEngine, VmForecast, EngineOptions } from './prediction-engine';
export { fitGlobalForecaster, GlobalBoostedForecaster } from './global-boosted-forecaster';
export { WindowQuantileForecaster } from './window-quantile-forecaster';
export { HoltWintersForecaster } from './holt-winters-forecaster';
export { Forecast, Forecaster, DEFAULT_HORIZON_MINUTES, horizonSteps } from './time-series';
export { hostSaturation, HostSaturation, HostCapacity, VmDemandForecast, vmDemandFromForecasts } from './host-saturation';
export { hostFailureRisk, HealthSnapshot, FailureRisk } from './failure-risk';
export { anomalyScore, AnomalyScore } from './anomaly';
export { MigrationHistory, MigrationOutcome } from './migration-history';
export { AffinityGroups, GroupKind } from './affinity-groups';
export { adviseMigration, allowedIntervals, validatePolicy, MigrationAdvice, MigrationPolicy, TimeWindow, VmRiskInput } from './migration-advisor';
export { evaluateTraces, formatEvaluation, EvaluateOptions, EvaluationReport } from './evaluate';
export { runEvaluateCommand, EVALUATE_USAGE } from './evaluate-cli';

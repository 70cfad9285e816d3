// Public surface of destination ranking.

export { PredictiveRanker } from './predictive-ranker';
export { CapacityHeadroomRanker } from './capacity-headroom-ranker';
export { formatRankTable } from './rank-table';
export { predictMigrationSeconds } from './migration-cost';
export * from './types';

// The capabilities the coordinator runs, in start order. Each entry's name is its config section.
import type { CoordinatorModuleDefinition } from './coordinator-module';
import { ipShadowCoordinatorModule } from './shadow/ipshadow-coordinator-module';
import { predictionCoordinatorModule } from './predict/prediction-module';
import { memoryCoordinatorModule } from './memory/memory-module';
import { switchoverCoordinatorModule } from './switchover/switchover-module';

export const COORDINATOR_MODULES: ReadonlyArray<CoordinatorModuleDefinition<never>> = [
  // First: shadow placement (ipshadow) ranks with its forecasts.
  predictionCoordinatorModule as CoordinatorModuleDefinition<never>,
  ipShadowCoordinatorModule as CoordinatorModuleDefinition<never>,
  memoryCoordinatorModule as CoordinatorModuleDefinition<never>,
  // After ipshadow (its fenced IP switch and TriggerMigration) and memory (flush, lag).
  switchoverCoordinatorModule as CoordinatorModuleDefinition<never>,
];

// The capabilities the coordinator runs, in start order. Each entry's name is its config section.
import type { CoordinatorModuleDefinition } from './coordinator-module';
import { ipShadowCoordinatorModule } from './shadow/ipshadow-coordinator-module';
import { memoryCoordinatorModule } from './memory/memory-module';

export const COORDINATOR_MODULES: ReadonlyArray<CoordinatorModuleDefinition<never>> = [
  ipShadowCoordinatorModule as CoordinatorModuleDefinition<never>,
  memoryCoordinatorModule as CoordinatorModuleDefinition<never>,
];

// Public surface of the QEMU driver: what the agent daemon, replication and tests may use.
export { QmpClient, type QmpClientOptions, DEFAULT_QMP_COMMAND_TIMEOUT_MS, DEFAULT_QMP_CONNECT_TIMEOUT_MS } from './qmp-client';
export { QmpError, QmpTimeoutError, QmpDisconnectedError } from './qmp-errors';
export type { QmpEvent, QmpGreeting } from './qmp-protocol';
export type { QmpStatusInfo, QmpMigrationInfo, QmpMemdevInfo, QmpEventName } from './qmp-types';
export {
  parseVmDefinition,
  toQemuArgs,
  GUEST_RAM_BACKEND_ID,
  type VmDefinition,
  type VmNic,
  type VmBoot,
  type MemoryBackend,
  type QemuArgsOptions,
} from './vm-definition';
export { launchQemu, attachQemu, isPidAlive, QemuProcess, type LaunchQemuOptions, type QemuExit } from './qemu-process';
export { discoverQemuProcesses, type DiscoveredQemu } from './qemu-discovery';
export { parseQemuCmdline, type ParsedQemuCmdline } from './qemu-cmdline-parser';
export { findGuestRam, copyGuestRam, type GuestRamLocation } from './qemu-guest-ram';
export {
  launchShadowQemu,
  migrateDeviceState,
  waitIncomingLoaded,
  resumeGuest,
  queryFinishedMigration,
  DeviceStateMigrationError,
  DEVICE_STATE_CAPABILITIES,
  type ShadowLaunchOptions,
  type DeviceStateMigrationResult,
} from './device-state-migration';

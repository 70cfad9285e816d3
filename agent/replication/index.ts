// Public surface of memory replication for the agent daemon (wiring, health, control RPCs).
export { ReplicationSource, DEFAULT_FLUSH_TIMEOUT_MS } from './replication-source';
export type { ReplicationSourceOptions, ReplicationSourceStatus, RoundReport, ShadowTarget } from './replication-source';
export { ReplicationReceiver } from './replication-receiver';
export type { ReplicationReceiverOptions, ShadowStatus, OpenReplication } from './replication-receiver';
export { replicationServiceHandlers, REPLICATION_SERVICE_NAME } from './replication-service';
export { grpcShadowChannelFactory } from './grpc-shadow-channel';
export type { ShadowChannel, ShadowChannelFactory } from './shadow-channel';
export type { ShadowLinkStatus } from './shadow-link';
export { shadowImagePath } from './shadow-image';
export { ShadowStateStore } from './shadow-state-store';
export { ShadowDiskFullError, ShadowImageError, FlushIncompleteError } from './errors';
export { locateGuestRam, ProcGuestMemory } from '../memory/proc-guest-memory';
export { selectDirtyTracker, createTracker } from '../memory/tracker-selector';
export type { TrackerSelection, TrackerAttempt } from '../memory/tracker-selector';
export { uffdPreloadLibraryPath, nativeAvailable } from '../memory/native-binding';

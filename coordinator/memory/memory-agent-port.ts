// The port through which the coordinator drives replication on agents (gRPC in production, fakes
// in tests). Statuses stay in the agents' wire form: the coordinator passes them through.

/** umbra.agent.v1.ShadowLinkStatus as it arrives (uint64 as decimal strings). */
export interface AgentShadowLinkStatus {
  host_id: string;
  endpoint: string;
  state: string;
  acked_epoch: string;
  lag_bytes: string;
  frames_sent: string;
  bytes_sent: string;
  reconnects: number;
  full_resends: number;
  last_error: string;
  /** Absent from agents older than ResyncShadow. */
  resyncs?: number;
  resync_pending?: boolean;
  /** Absent from agents older than image digests. */
  digest_resends?: number;
  digest_spared_pages?: string;
}

/** umbra.agent.v1.SourceReplicationStatus as it arrives. */
export interface AgentSourceStatus {
  vm_id: string;
  generation: string;
  tracker: string;
  tracker_attempts: Array<{ tracker: string; ok: boolean; reason: string }>;
  epoch: string;
  running: boolean;
  dirty_rate_bytes_per_s: number;
  round_interval_ms: number;
  memory_bytes: string;
  shadows: AgentShadowLinkStatus[];
  last_scan_ms: number;
  last_dirty_pages: number;
}

export interface ShadowTargetEndpoint {
  host_id: string;
  endpoint: string;
}

export interface MemoryAgentPort {
  start(sourceHost: string, vmId: string, shadows: ShadowTargetEndpoint[]): Promise<AgentSourceStatus>;
  stop(sourceHost: string, vmId: string): Promise<boolean>;
  flush(sourceHost: string, vmId: string, timeoutMs: number): Promise<{ finalEpoch: number; flushMs: number }>;
  resume(sourceHost: string, vmId: string): Promise<void>;
  /** Shadow `hostId`'s image is invalid: the source makes it discard the image and sends a full copy. */
  resyncShadow(sourceHost: string, vmId: string, hostId: string, reason: string): Promise<AgentSourceStatus>;
  /** The VM's source state, or undefined when the source agent does not replicate it (e.g. after a restart). */
  status(sourceHost: string, vmId: string): Promise<AgentSourceStatus | undefined>;
}

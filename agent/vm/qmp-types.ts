// Shapes of the QMP answers Umbra reads (subsets of QEMU's QAPI schema, QEMU 7.2 and later).

/** query-status: `status` is QEMU's RunState (running, paused, inmigrate, postmigrate, ...). */
export interface QmpStatusInfo {
  status: string;
  running: boolean;
  singlestep?: boolean;
}

export interface QmpMigrationRamStats {
  transferred: number;
  remaining: number;
  total: number;
  duplicate?: number;
  normal?: number;
  'normal-bytes'?: number;
  'dirty-sync-count'?: number;
  'dirty-pages-rate'?: number;
  mbps?: number;
  'pages-per-second'?: number;
}

/** query-migrate: `status` is none, setup, active, device, completed, failed, cancelled, ... */
export interface QmpMigrationInfo {
  status?: string;
  ram?: QmpMigrationRamStats;
  /** Wall time of the whole migration in ms, once completed. */
  'total-time'?: number;
  /** Time the guest was stopped, in ms, once completed. */
  downtime?: number;
  'expected-downtime'?: number;
  'setup-time'?: number;
  'error-desc'?: string;
}

export interface QmpMemdevInfo {
  id?: string;
  size: number;
  share: boolean;
  merge: boolean;
  dump: boolean;
  prealloc: boolean;
  policy: string;
  'host-nodes': number[];
}

/** Events the agent waits for; anything else still arrives, with its name. */
export type QmpEventName = 'STOP' | 'RESUME' | 'SHUTDOWN' | 'POWERDOWN' | 'RESET' | 'MIGRATION' | 'MIGRATION_PASS' | (string & {});

// Vocabulary of destination ranking: what the ranker knows about a VM and the candidate hosts,
// and what it returns (ranked destinations with their score breakdown, rejections with reasons).

export interface HostView {
  id: string;
  /** False when the host is down or draining: never a destination. */
  up: boolean;
  cpuCapacityCores: number;
  memoryCapacityBytes: number;
  /** Forecast peak use over the horizon of everything the host already runs. */
  cpuPeakCores: number;
  memoryPeakBytes: number;
  cpuModel: string;
  /** CPU vendor/family, e.g. "AMD Zen3"; hosts of one family share most flags. */
  cpuFamily?: string;
  cpuFlags: readonly string[];
  /** Free GPU models (one entry per free device). */
  freeGpuModels?: readonly string[];
  failureDomain: string;
  /** Keep-apart (anti-affinity) and keep-together labels of the VMs this host holds. */
  groups?: readonly string[];
  /** Bandwidth of the migration link into this host. */
  linkBandwidthBytesPerSec: number;
  /** Predicted probability that the host fails within the horizon (0..1). */
  failureRisk?: number;
}

export interface VmView {
  id: string;
  sourceHostId: string;
  /** Forecast peak use over the horizon. */
  cpuPeakCores: number;
  memoryPeakBytes: number;
  /** Guest RAM that a migration has to move. */
  memorySizeBytes: number;
  dirtyRateBytesPerSec: number;
  cpuModel: string;
  cpuFamily?: string;
  requiredCpuFlags: readonly string[];
  /** GPU models the guest holds (one entry per device): the destination needs each free. */
  gpuModels?: readonly string[];
  keepApartGroups?: readonly string[];
  keepTogetherGroups?: readonly string[];
  /** Destination must be outside the source's failure domain. */
  requireOtherFailureDomain?: boolean;
}

export interface ScoreWeights {
  headroom: number;
  similarity: number;
  migrationCost: number;
  warmShadow: number;
  history: number;
  health: number;
  togetherness: number;
}

export const DEFAULT_WEIGHTS: ScoreWeights = {
  headroom: 0.35,
  similarity: 0.1,
  migrationCost: 0.2,
  warmShadow: 0.15,
  history: 0.1,
  health: 0.05,
  togetherness: 0.05,
};

/** Outcome counts of past migrations into a host. */
export interface DestinationRecord {
  successes: number;
  failures: number;
}

export interface RankContext {
  /** Share of each host's capacity kept free after placement (0.1 = 10%). */
  headroomFraction?: number;
  weights?: Partial<ScoreWeights>;
  /**
   * The hosts already holding a warm shadow of the VM (its memory image, or its IP configuration
   * for a VM whose memory is not replicated). Asked once per ranked VM, so ranking a fleet costs
   * one lookup per VM rather than one per VM and host.
   */
  warmShadowHosts?: (vmId: string) => Iterable<string>;
  history?: (hostId: string) => DestinationRecord | undefined;
  /** How many destinations to return (the rest are counted, not listed). Default: all. */
  limit?: number;
  /** List every rejected host with its reason (a single-VM explanation); bulk ranking only counts them. */
  explainRejected?: boolean;
}

export type RejectReason =
  | 'HOST_DOWN'
  | 'SOURCE_HOST'
  | 'CPU_CAPACITY'
  | 'MEMORY_CAPACITY'
  | 'CPU_FLAGS'
  | 'GPU_MODEL'
  | 'FAILURE_DOMAIN'
  | 'ANTI_AFFINITY';

export const REJECT_REASONS: readonly RejectReason[] = [
  'HOST_DOWN',
  'SOURCE_HOST',
  'CPU_CAPACITY',
  'MEMORY_CAPACITY',
  'CPU_FLAGS',
  'GPU_MODEL',
  'FAILURE_DOMAIN',
  'ANTI_AFFINITY',
];

export interface ScoreComponent {
  /** Component value in [0, 1] (1 = best). */
  value: number;
  weight: number;
  /** value * weight: what it adds to the score. */
  contribution: number;
  /** An operator-readable sentence. */
  reason: string;
}

export type ScoreBreakdown = Record<keyof ScoreWeights, ScoreComponent>;

export interface RankedDestination {
  hostId: string;
  /** 1 = best. */
  rank: number;
  score: number;
  breakdown: ScoreBreakdown;
  predictedMigrationSeconds: number;
  /** The strongest reasons, best first. */
  reasons: string[];
}

export interface RejectedDestination {
  hostId: string;
  reason: RejectReason;
  detail: string;
}

export interface RankResult {
  vmId: string;
  ranked: RankedDestination[];
  /** Every rejected host with its reason when context.explainRejected; otherwise empty. */
  rejected: RejectedDestination[];
  rejectedCounts: Partial<Record<RejectReason, number>>;
  /** Hosts that passed the constraints (ranked may be shorter when a limit was set). */
  eligible: number;
}

export interface Ranker {
  readonly name: string;
  rank(vm: VmView, hosts: readonly HostView[], context?: RankContext): RankResult;
}

// The agent's `replication` config section: bandwidth budget and pacing of source rounds, tracker
// preference, lag bound for health, and (until QEMU discovery) the VMs whose RAM this host can replicate.
import type { ConfigReader, Mapping } from '../../shared/config-reader';
import { FRAME_CODECS, DEFAULT_FRAME_CODEC, type FrameCodecName } from '../../shared/frame-codec';
import { TRACKER_PREFERENCE, type TrackerName } from '../memory/dirty-tracker';
import type { GuestMemoryLocator } from '../memory/guest-process-locator';
import { DEFAULT_MAX_ROUND_INTERVAL_MS, DEFAULT_MIN_ROUND_INTERVAL_MS } from './round-pacer';
import { DEFAULT_WINDOW_BYTES } from './shadow-link';
import { VM_ID, VM_ID_HINT } from '../../shared/validate';

/** Lag above this (per shadow) makes the agent report a problem in health. */
export const DEFAULT_MAX_LAG_BYTES = 64 * 1024 * 1024;

export interface ReplicationVmConfig extends GuestMemoryLocator {
  id: string;
}

export interface ReplicationAgentConfig {
  /** Wire bytes per second per VM and shadow; 0 = unlimited. */
  bandwidthBudgetBytesPerSec: number;
  minRoundIntervalMs: number;
  maxRoundIntervalMs: number;
  /** Unacknowledged bytes per shadow before it sits rounds out. */
  windowBytes: number;
  maxLagBytes: number;
  codec: FrameCodecName;
  /** Codec of a flush's frames (guest paused; see ReplicationSourceOptions.flushCodec). */
  flushCodec: FrameCodecName;
  /** Trackers to try, best first. */
  trackers: TrackerName[];
  vms: ReplicationVmConfig[];
}

export function parseReplicationAgentConfig(r: ConfigReader, raw: unknown, path: string): ReplicationAgentConfig {
  const m = r.mapping(raw, path, [
    'bandwidth_budget_bytes_per_s',
    'min_round_interval_ms',
    'max_round_interval_ms',
    'window_bytes',
    'max_lag_bytes',
    'codec',
    'flush_codec',
    'trackers',
    'vms',
  ]);
  const trackers = r.stringList(m, 'trackers', path, { default: [...TRACKER_PREFERENCE] });
  trackers.forEach((t, i) => {
    if (!TRACKER_PREFERENCE.includes(t as TrackerName)) r.problem(`${path}.trackers[${i}]`, `must be one of ${TRACKER_PREFERENCE.join(', ')}, got '${t}'`);
  });
  if (trackers.length === 0) r.problem(`${path}.trackers`, 'must name at least one tracker');
  const vms: ReplicationVmConfig[] = [];
  const vmsRaw = m.vms ?? [];
  if (!Array.isArray(vmsRaw)) r.problem(`${path}.vms`, 'must be a list');
  else
    vmsRaw.forEach((v, i) => {
      const p = `${path}.vms[${i}]`;
      const e: Mapping = r.mapping(v, p, ['id', 'pid', 'pid_file', 'qmp_socket', 'memory_path', 'memory_bytes']);
      const vm: ReplicationVmConfig = {
        id: r.string(e, 'id', p, { pattern: VM_ID, patternHint: VM_ID_HINT }),
        memoryBytes: r.integer(e, 'memory_bytes', p, { min: 4096 }),
      };
      if (e.pid !== undefined) vm.pid = r.integer(e, 'pid', p, { min: 1 });
      if (e.pid_file !== undefined) vm.pidFile = r.string(e, 'pid_file', p);
      if (e.qmp_socket !== undefined) vm.qmpSocket = r.string(e, 'qmp_socket', p);
      if (e.memory_path !== undefined) vm.memoryPath = r.string(e, 'memory_path', p);
      const pickers = ['pid', 'pid_file', 'qmp_socket'].filter((k) => e[k] !== undefined);
      if (pickers.length > 1) r.problem(p, `give one of pid, pid_file, qmp_socket (got ${pickers.join(', ')})`);
      if (pickers.length === 0 && e.memory_path === undefined) r.problem(p, 'needs one of pid, pid_file, qmp_socket or memory_path');
      if (vms.some((x) => x.id === vm.id)) r.problem(`${p}.id`, `duplicate VM id '${vm.id}'`);
      vms.push(vm);
    });
  const minRoundIntervalMs = r.integer(m, 'min_round_interval_ms', path, { default: DEFAULT_MIN_ROUND_INTERVAL_MS, min: 1, max: 60_000 });
  const maxRoundIntervalMs = r.integer(m, 'max_round_interval_ms', path, { default: DEFAULT_MAX_ROUND_INTERVAL_MS, min: 1, max: 600_000 });
  if (maxRoundIntervalMs < minRoundIntervalMs) r.problem(`${path}.max_round_interval_ms`, `must be at least min_round_interval_ms (${minRoundIntervalMs})`);
  return {
    bandwidthBudgetBytesPerSec: r.integer(m, 'bandwidth_budget_bytes_per_s', path, { default: 0, min: 0 }),
    minRoundIntervalMs,
    maxRoundIntervalMs,
    windowBytes: r.integer(m, 'window_bytes', path, { default: DEFAULT_WINDOW_BYTES, min: 1024 * 1024 }),
    maxLagBytes: r.integer(m, 'max_lag_bytes', path, { default: DEFAULT_MAX_LAG_BYTES, min: 0 }),
    codec: r.string(m, 'codec', path, { default: DEFAULT_FRAME_CODEC, oneOf: FRAME_CODECS }) as FrameCodecName,
    flushCodec: r.string(m, 'flush_codec', path, { default: DEFAULT_FRAME_CODEC, oneOf: FRAME_CODECS }) as FrameCodecName,
    trackers: trackers as TrackerName[],
    vms,
  };
}

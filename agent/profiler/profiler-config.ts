// The agent's `profiler` config section: sampling interval and batch size, which uplinks count as
// host traffic, health signal options, and the VMs to watch (by pid or QEMU pid file).
import type { ConfigReader } from '../../shared/config-reader';
import { DEFAULT_BATCH_SAMPLES, DEFAULT_HEALTH_EVERY, DEFAULT_SAMPLE_INTERVAL_MS } from './profile-sampler';

export const DEFAULT_MAX_QUEUED_BATCHES = 60;
const VM_ID = /^[A-Za-z0-9._@:-]{1,256}$/;

export interface ProfiledVmConfig {
  vmId: string;
  pid?: number;
  pidFile?: string;
  vcpus: number;
  memoryBytes?: number;
  tap?: string;
}

export interface ProfilerConfig {
  /** False: the module does not run (no section in the config means enabled with defaults). */
  enabled: boolean;
  intervalMs: number;
  batchSamples: number;
  healthEvery: number;
  smart: boolean;
  /** Uplinks counted as the host's traffic; empty: every interface but loopback. */
  interfaces: string[];
  /** Batches kept while the coordinator is away; the oldest go first. */
  maxQueuedBatches: number;
  vms: ProfiledVmConfig[];
}

export function parseProfilerConfig(r: ConfigReader, raw: unknown, path: string): ProfilerConfig {
  const m = r.mapping(raw, path, ['enabled', 'interval_ms', 'batch_samples', 'health_every', 'smart', 'interfaces', 'max_queued_batches', 'vms']);
  const vms: ProfiledVmConfig[] = [];
  const vmsRaw = m.vms ?? [];
  if (!Array.isArray(vmsRaw)) r.problem(`${path}.vms`, 'must be a list');
  else {
    vmsRaw.forEach((item, i) => {
      const p = `${path}.vms[${i}]`;
      const v = r.mapping(item, p, ['vm_id', 'pid', 'pidfile', 'vcpus', 'memory_bytes', 'tap']);
      const vmId = r.string(v, 'vm_id', p, { pattern: VM_ID, patternHint: "must be 1-256 letters, digits, '.', '_', '@', ':' or '-'" });
      const pid = v.pid === undefined ? undefined : r.integer(v, 'pid', p, { min: 1 });
      const pidFile = v.pidfile === undefined ? undefined : r.string(v, 'pidfile', p);
      if ((pid === undefined) === (pidFile === undefined)) r.problem(p, 'needs exactly one of pid, pidfile');
      const memoryBytes = v.memory_bytes === undefined ? undefined : r.integer(v, 'memory_bytes', p, { min: 1 });
      const tap = v.tap === undefined ? undefined : r.string(v, 'tap', p, { pattern: /^[^\s/]{1,15}$/, patternHint: 'must be an interface name' });
      if (vms.some((x) => x.vmId === vmId)) r.problem(`${p}.vm_id`, `duplicate VM id '${vmId}'`);
      vms.push({
        vmId,
        vcpus: r.integer(v, 'vcpus', p, { default: 1, min: 1, max: 1024 }),
        ...(pid !== undefined ? { pid } : {}),
        ...(pidFile !== undefined ? { pidFile } : {}),
        ...(memoryBytes !== undefined ? { memoryBytes } : {}),
        ...(tap !== undefined ? { tap } : {}),
      });
    });
  }
  return {
    enabled: r.boolean(m, 'enabled', path, { default: true }),
    intervalMs: r.integer(m, 'interval_ms', path, { default: DEFAULT_SAMPLE_INTERVAL_MS, min: 100, max: 3_600_000 }),
    batchSamples: r.integer(m, 'batch_samples', path, { default: DEFAULT_BATCH_SAMPLES, min: 1, max: 1000 }),
    healthEvery: r.integer(m, 'health_every', path, { default: DEFAULT_HEALTH_EVERY, min: 1 }),
    smart: r.boolean(m, 'smart', path, { default: false }),
    interfaces: r.stringList(m, 'interfaces', path, { default: [] }),
    maxQueuedBatches: r.integer(m, 'max_queued_batches', path, { default: DEFAULT_MAX_QUEUED_BATCHES, min: 1, max: 10_000 }),
    vms,
  };
}

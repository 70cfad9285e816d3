// Telemetry delivery: in order, retried with backoff while the coordinator is away, the oldest
// batches dropped (and counted) beyond the queue bound; the agent's wire reads back at the coordinator.
import test from 'ava';
import { TelemetrySender } from '../../../agent/profiler/telemetry-sender';
import { batchToWire } from '../../../agent/profiler/telemetry-wire';
import { parseProfilerConfig } from '../../../agent/profiler/profiler-config';
import type { ProfileBatch } from '../../../agent/profiler/types';
import { parseTelemetryReport } from '../../../coordinator/predict/telemetry-report';
import { ConfigReader } from '../../../shared/config-reader';
import { until } from '../../helpers/until';


test('delivers in order; while the port fails it retries and drops the oldest beyond the bound', async (t) => {
  const got: number[] = [];
  let up = false;
  const s = new TelemetrySender<number>({ send: async (b) => { if (!up) throw new Error('coordinator away'); got.push(b); } }, 3, { initialRetryMs: 5, maxRetryMs: 20 });
  for (let i = 1; i <= 5; i++) s.enqueue(i);
  await until(() => s.stats().failures >= 2, 'a retry after the first failure');
  const away = s.stats();
  t.is(away.dropped, 2);
  t.is(away.queued, 3);
  t.is(away.lastError, 'coordinator away');
  up = true;
  await until(() => s.stats().sent === 3, 'the queued batches sent once the port works');
  s.enqueue(6);
  await until(() => s.stats().sent === 4, 'the batch queued after recovery');
  await s.flushed();
  t.deepEqual(got, [3, 4, 5, 6]);
  t.is(s.stats().sent, 4);
  s.close();
});

test("the agent's batch wire is read back by the coordinator", (t) => {
  const batch: ProfileBatch = {
    hostId: 'hv-a',
    host: [{ timeMs: 1000, cpuLoadPercent: 50, cpuCores: 4, memoryUsedBytes: 2e9, memoryTotalBytes: 8e9, netRxBytes: 1, netTxBytes: 2, diskReadBytes: 3, diskWriteBytes: 4 }],
    vms: [{ vmId: 'vm1', timeMs: 1000, intervalMs: 500, cpuCores: 1.5, cpuPercentOfAllocation: 75, memoryBytes: 1e9, cpuSource: 'cgroup', dirtyRateBytesPerSec: 5e6 }],
    health: [{ timeMs: 1000, edac: { present: false }, thermal: { present: true, maxTemperatureC: 61 }, smart: { present: false } }],
    cost: { samples: 2, meanCpuMs: 0.5, maxCpuMs: 0.7 },
    malformed: 1,
  };
  const wire = JSON.parse(JSON.stringify(batchToWire(batch, () => ({ vcpus: 2, memoryBytes: 2e9 }))));
  const r = parseTelemetryReport('hv-a', wire);
  t.is(r.dropped, 1);
  t.deepEqual(r.host, [{ timeMs: 1000, cpuBusyCores: 2, cpuCores: 4, memoryUsedBytes: 2e9, memoryTotalBytes: 8e9 }]);
  t.deepEqual(r.vms, [{ vmId: 'vm1', timeMs: 1000, cpuCores: 1.5, cpuPercent: 75, vcpus: 2, memoryBytes: 1e9, memoryAllocationBytes: 2e9, memoryPercent: 50, dirtyRateBytesPerSec: 5e6 }]);
  t.deepEqual(r.health, [{ timeMs: 1000, maxTemperatureC: 61 }]);
  t.deepEqual(r.cost, { samples: 2, meanCpuMs: 0.5, maxCpuMs: 0.7 });
  // A guest's GPUs travel with its readings.
  const withGpus = parseTelemetryReport('hv-a', JSON.parse(JSON.stringify(batchToWire(batch, () => ({ vcpus: 2, gpuModels: ['NVIDIA A100', 'NVIDIA A100'] })))));
  t.deepEqual(withGpus.vms[0].gpuModels, ['NVIDIA A100', 'NVIDIA A100']);
});

test('profiler config: VMs by pid or pid file, each mistake named', (t) => {
  const ok = new ConfigReader('agent.yaml');
  const c = parseProfilerConfig(ok, { interval_ms: 1000, vms: [{ vm_id: 'vm1', pid: 42, vcpus: 2 }, { vm_id: 'vm2', pidfile: '/run/qemu/vm2.pid', memory_bytes: 1024, tap: 'tap0' }] }, 'profiler');
  t.deepEqual(ok.problems, []);
  t.deepEqual(c.vms, [{ vmId: 'vm1', vcpus: 2, pid: 42 }, { vmId: 'vm2', vcpus: 1, pidFile: '/run/qemu/vm2.pid', memoryBytes: 1024, tap: 'tap0' }]);
  t.true(c.enabled);
  const bad = new ConfigReader('agent.yaml');
  parseProfilerConfig(bad, { interval_ms: 10, colour: 1, vms: [{ vm_id: 'vm1' }, { vm_id: 'vm1', pid: 1, pidfile: '/x' }, { vm_id: 'a b', pid: 0 }] }, 'profiler');
  const paths = bad.problems.map((p) => p.path);
  t.true(paths.includes('profiler.interval_ms'));
  t.true(paths.includes('profiler.colour'));
  t.true(paths.includes('profiler.vms[0]'), 'neither pid nor pidfile');
  t.true(paths.includes('profiler.vms[1]'), 'both');
  t.true(paths.includes('profiler.vms[1].vm_id'), 'duplicate');
  t.true(paths.includes('profiler.vms[2].vm_id'));
  t.true(paths.includes('profiler.vms[2].pid'));
});

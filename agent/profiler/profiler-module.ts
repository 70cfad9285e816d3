// Agent module `profiler`: samples the host (from /proc), the configured VMs (process and cgroup v2
// counters, tap counters) and health signals, and delivers the batches to the coordinator's
// PredictionService.ReportTelemetry; health shows what a sample costs and how delivery goes.
import { Gauge } from 'prom-client';
import { errorMessage } from '../../shared/errors';
import { callUnary } from '../../shared/grpc-client';
import { AGENT_MODULE_NAMES, type AgentModuleDefinition, type ModuleHealth, type RunningAgentModule } from '../agent-module';
import { readPidFile } from './pid-file';
import { ProcHostStats } from './proc-host-stats';
import { ProcVmStats } from './proc-vm-stats';
import { guestsRunningHere } from './vm-module-view';
import { ProcessCpuMeter } from './process-cpu-meter';
import { ProfileSampler } from './profile-sampler';
import { type ProfilerConfig, type ProfiledVmConfig, parseProfilerConfig } from './profiler-config';
import { SysfsHealthSource } from './sysfs-health-source';
import { batchToWire } from './telemetry-wire';
import { TelemetrySender } from './telemetry-sender';
import type { ProfileBatch, VmTarget } from './types';
import { VmGpuReader } from './vm-gpus';

export const PREDICTION_SERVICE = 'umbra.coordinator.v1.PredictionService';
const REPORT_DEADLINE_MS = 5_000;
/** Pid files are read again this often (in samples): a restarted QEMU gets a new pid. */
const PIDFILE_RECHECK_SAMPLES = 5;
/** A sample costing more CPU than this is reported as a problem (issue 4 target). */
export const SAMPLE_COST_BUDGET_MS = 5;

export const profilerAgentModule: AgentModuleDefinition<ProfilerConfig> = {
  name: AGENT_MODULE_NAMES.profiler,
  parseConfig: parseProfilerConfig,
  async start(config, ctx): Promise<RunningAgentModule> {
    if (!config.enabled) {
      return {
        health: (): ModuleHealth => ({ problems: [], capabilities: [{ name: 'profiler', available: false, detail: 'disabled in the config' }] }),
        close: async () => undefined,
      };
    }
    const client = ctx.coordinatorClient(PREDICTION_SERVICE);
    const targets = new Map<string, VmTarget>();
    let lastCost = { samples: 0, meanCpuMs: 0, maxCpuMs: 0 };
    const sender = new TelemetrySender<ProfileBatch>(
      {
        send: async (batch) => {
          await callUnary(client, 'ReportTelemetry', batchToWire(batch, (id) => targets.get(id)), REPORT_DEADLINE_MS);
        },
      },
      config.maxQueuedBatches,
    );
    let lastSampleError = '';
    const sampler = new ProfileSampler({
      hostId: ctx.hostId,
      host: new ProcHostStats(config.interfaces.length > 0 ? config.interfaces : undefined),
      vms: new ProcVmStats(),
      health: new SysfsHealthSource({ smart: config.smart }),
      meter: new ProcessCpuMeter(),
      intervalMs: config.intervalMs,
      batchSamples: config.batchSamples,
      healthEvery: config.healthEvery,
      onBatch: (batch) => {
        if (batch.cost.samples > 0) lastCost = batch.cost;
        sender.enqueue(batch);
      },
      onError: (err) => {
        lastSampleError = errorMessage(err);
        ctx.logger.debug({ err: lastSampleError }, 'profiler sample problem');
      },
      runsHere: () => guestsRunningHere(ctx.modules),
    });

    const watchedPid = new Map<string, number>();
    const gpus = new VmGpuReader();
    const watch = (vm: ProfiledVmConfig) => {
      const pid = vm.pid ?? (vm.pidFile ? readPidFile(vm.pidFile) : undefined);
      if (pid === undefined || watchedPid.get(vm.vmId) === pid) return;
      const target: VmTarget = { vmId: vm.vmId, pid, vcpus: vm.vcpus, ...(vm.memoryBytes ? { memoryBytes: vm.memoryBytes } : {}), ...(vm.tap ? { tap: vm.tap } : {}) };
      targets.set(vm.vmId, target);
      watchedPid.set(vm.vmId, pid);
      sampler.watch(target);
      ctx.logger.info({ vmId: vm.vmId, pid }, 'profiling VM');
      // Reports carry the guest's GPUs from then on: the coordinator ranks only hosts with them free.
      gpus
        .of(pid)
        .then((models) => {
          if (models.length === 0 || targets.get(vm.vmId) !== target) return;
          target.gpuModels = models;
          ctx.logger.info({ vmId: vm.vmId, gpus: models }, 'VM holds GPUs');
        })
        .catch((err: unknown) => ctx.logger.warn({ vmId: vm.vmId, pid, err: errorMessage(err) }, 'could not read the VM\'s devices'));
    };
    const watchAll = () => config.vms.forEach(watch);
    watchAll();
    const pidTimer = setInterval(watchAll, config.intervalMs * PIDFILE_RECHECK_SAMPLES);
    pidTimer.unref();
    sampler.start();
    ctx.logger.info({ intervalMs: config.intervalMs, batchSamples: config.batchSamples, vms: config.vms.length }, 'profiler started');

    const costGauge = new Gauge({ name: 'umbra_agent_profiler_sample_cpu_ms', help: 'CPU time of one profiler sample (mean and max of the last batch)', labelNames: ['stat'], registers: [ctx.metrics], collect() {
      this.set({ stat: 'mean' }, lastCost.meanCpuMs);
      this.set({ stat: 'max' }, lastCost.maxCpuMs);
    } });
    const droppedGauge = new Gauge({ name: 'umbra_agent_profiler_batches_dropped', help: 'Telemetry batches dropped while the coordinator was away', registers: [ctx.metrics], collect() {
      this.set(sender.stats().dropped);
    } });

    return {
      health(): ModuleHealth {
        const s = sender.stats();
        const problems: string[] = [];
        if (s.queued > 1 && s.lastError) problems.push(`telemetry not delivered (${s.queued} batches waiting): ${s.lastError}`);
        if (lastCost.meanCpuMs > SAMPLE_COST_BUDGET_MS) problems.push(`profiler sample costs ${lastCost.meanCpuMs.toFixed(2)} ms CPU (budget ${SAMPLE_COST_BUDGET_MS} ms)`);
        const missing = config.vms.filter((v) => !watchedPid.has(v.vmId)).map((v) => v.vmId);
        return {
          problems,
          capabilities: [
            {
              name: 'profiler',
              available: true,
              detail: `every ${config.intervalMs} ms; sample cost mean ${lastCost.meanCpuMs.toFixed(2)} ms, max ${lastCost.maxCpuMs.toFixed(2)} ms CPU over ${lastCost.samples} samples`,
            },
            { name: 'profiled-vms', available: missing.length === 0, detail: `${[...watchedPid.entries()].map(([id, pid]) => `${id}=pid ${pid}`).join(', ') || 'none'}${missing.length ? `; no pid yet: ${missing.join(', ')}` : ''}${lastSampleError ? `; last problem: ${lastSampleError}` : ''}` },
            { name: 'telemetry', available: s.queued <= 1, detail: `${s.sent} batches sent, ${s.failures} failures, ${s.dropped} dropped, ${s.queued} queued` },
          ],
        };
      },
      async close() {
        clearInterval(pidTimer);
        sampler.close();
        sender.close();
        await sender.flushed();
        client.close();
        void costGauge;
        void droppedGauge;
      },
    };
  },
};

// Coordinator module `switchover`: the full VM switchover (QEMU VMs) behind TriggerMigration,
// shadow VMs kept in step with the memory shadows (prepared where a VM's RAM is shadowed, removed
// elsewhere), resolution of journals a stopped coordinator left behind (at start, then periodically),
// the ranker behind "best destination", and automatic mode's migration trigger (the prediction
// module's MIGRATION_RECOMMENDED decisions start switchovers through the same routes).
import type { ConfigReader } from '../../shared/config-reader';
import { errorMessage, isUmbraError } from '../../shared/errors';
import { KeyedMutex } from '../../shared/keyed-mutex';
import { MIGRATION_SERVICE, type MigrationServiceBinding } from '../api/migration-service';
import type { CoordinatorModuleDefinition, RunningCoordinatorModule } from '../coordinator-module';
import type { RunningMemoryModule } from '../memory/memory-module';
import type { RunningPredictionModule } from '../predict/prediction-module';
import { CapacityHeadroomRanker } from '../rank/capacity-headroom-ranker';
import { hostViewOf, vmViewOf } from '../shadow/host-views';
import { AutoSwitchover, DEFAULT_AUTO_COOLDOWN_MS, DEFAULT_AUTO_MAX_CONCURRENT } from './auto-switchover';
import { GrpcVmAgentPort } from './grpc-vm-agent-port';
import { memoryPortOf } from './memory-shadow-port';
import type { VmAgentPort } from './switchover-ports';
import { DEFAULT_SOURCE_CLEANUP_DELAY_MS, VmSwitchover } from './vm-switchover';
import { planMemoryFollow } from './memory-follow';
import { warmShadowHosts } from './warm-shadow-hosts';

export interface SwitchoverCoordinatorConfig {
  /** Memory lag (bytes not yet at the destination) above which a switchover is refused. */
  maxLagBytes: number;
  flushTimeoutMs: number;
  deviceStateTimeoutMs: number;
  /** How often shadow VMs are reconciled with the memory shadows. */
  shadowVmIntervalMs: number;
  /** How often every host is asked for shadow VMs nobody wants (costs one call per host). */
  strayShadowVmSweepMs: number;
  /** How often unresolved journals are retried (they are also resolved at start). */
  recoverIntervalMs: number;
  /** How long after a switchover the source's memory replication is stopped. */
  sourceCleanupDelayMs: number;
  /** Automatic mode: a VM is switched over automatically at most once per this long. */
  autoCooldownMs: number;
  /** Automatic switchovers running at once, at most. */
  autoMaxConcurrent: number;
  /** "Best destination" for a VM without telemetry ranks on hosts' reported load too (false: capacity). */
  rankUsesHostLoad: boolean;
  /**
   * A QEMU VM's RAM is replicated to the hosts holding its IP shadows, from the host it runs on,
   * started and reshaped by the coordinator (after a switchover too); an operator's replication
   * (umbractl replication start) is left alone.
   */
  memoryFollowsShadows: boolean;
  /**
   * The source's pause, flush and device state in one agent call (SwitchOutVm; agents without it
   * get the three calls). false: always three calls (for comparison).
   */
  chainSourceSteps: boolean;
}

export function parseSwitchoverConfig(r: ConfigReader, raw: unknown, path: string): SwitchoverCoordinatorConfig {
  const m = r.mapping(raw, path, [
    'max_lag_bytes',
    'flush_timeout_ms',
    'device_state_timeout_ms',
    'shadow_vm_interval_ms',
    'shadow_vm_sweep_interval_ms',
    'recover_interval_ms',
    'source_cleanup_delay_ms',
    'auto_cooldown_ms',
    'auto_max_concurrent',
    'rank_uses_host_load',
    'chain_source_steps',
    'memory_follows_shadows',
  ]);
  return {
    maxLagBytes: r.integer(m, 'max_lag_bytes', path, { default: 64 * 1024 * 1024, min: 0 }),
    flushTimeoutMs: r.integer(m, 'flush_timeout_ms', path, { default: 10_000, min: 100 }),
    deviceStateTimeoutMs: r.integer(m, 'device_state_timeout_ms', path, { default: 10_000, min: 100 }),
    shadowVmIntervalMs: r.integer(m, 'shadow_vm_interval_ms', path, { default: 3_000, min: 100 }),
    strayShadowVmSweepMs: r.integer(m, 'shadow_vm_sweep_interval_ms', path, { default: 30_000, min: 100 }),
    recoverIntervalMs: r.integer(m, 'recover_interval_ms', path, { default: 10_000, min: 100 }),
    sourceCleanupDelayMs: r.integer(m, 'source_cleanup_delay_ms', path, { default: DEFAULT_SOURCE_CLEANUP_DELAY_MS, min: 0, max: 60_000 }),
    autoCooldownMs: r.integer(m, 'auto_cooldown_ms', path, { default: DEFAULT_AUTO_COOLDOWN_MS, min: 0 }),
    autoMaxConcurrent: r.integer(m, 'auto_max_concurrent', path, { default: DEFAULT_AUTO_MAX_CONCURRENT, min: 1 }),
    rankUsesHostLoad: r.boolean(m, 'rank_uses_host_load', path, { default: true }),
    chainSourceSteps: r.boolean(m, 'chain_source_steps', path, { default: true }),
    memoryFollowsShadows: r.boolean(m, 'memory_follows_shadows', path, { default: true }),
  };
}

/** The port with its one-call source side hidden (chain_source_steps: false). */
function withoutSwitchOut(vms: GrpcVmAgentPort): VmAgentPort {
  return {
    query: (h, v, role) => vms.query(h, v, role),
    prepareShadow: (h, v, d) => vms.prepareShadow(h, v, d),
    removeShadow: (h, v) => vms.removeShadow(h, v),
    pause: (h, v) => vms.pause(h, v),
    resume: (h, v) => vms.resume(h, v),
    migrateDeviceState: (h, v, uri, t) => vms.migrateDeviceState(h, v, uri, t),
  };
}

/** A VM whose memory could not follow its IP shadows (an error) is tried again after this. */
const MEMORY_FOLLOW_RETRY_MS = 30_000;
/**
 * A VM whose host runs no QEMU guest of it (its address moves alone) is asked about again after
 * this, or at once when it is active on another host: one agent call per such VM and period.
 */
const MEMORY_FOLLOW_NOT_A_GUEST_MS = 10 * 60_000;
/**
 * After a switchover of a VM its memory follows only this much later: the new source's first
 * replication round reads all of RAM (a full copy to a host without an image), which must not
 * compete with the guest's first moments on its new host (nor with the old source's cleanup).
 */
const MEMORY_FOLLOW_AFTER_SWITCHOVER_MS = 5_000;

export const switchoverCoordinatorModule: CoordinatorModuleDefinition<SwitchoverCoordinatorConfig> = {
  name: 'switchover',
  parseConfig: parseSwitchoverConfig,
  async start(config, ctx): Promise<RunningCoordinatorModule & { switchover: VmSwitchover }> {
    const log = ctx.logger;
    const memory = ctx.modules.get('memory') as RunningMemoryModule | undefined;
    const binding = ctx.modules.get('ipshadow')?.services?.find((s) => s.name === MIGRATION_SERVICE) as MigrationServiceBinding | undefined;
    if (!memory || !binding?.routes) throw new Error("module 'switchover' needs the 'ipshadow' and 'memory' modules started before it");
    const ipSwitch = binding.routes.ip;
    const vms = new GrpcVmAgentPort(ctx.agents);
    const locks = new KeyedMutex();
    const switchover = new VmSwitchover({
      store: ctx.store,
      vms: config.chainSourceSteps ? vms : withoutSwitchOut(vms),
      memory: memoryPortOf(memory, config.maxLagBytes),
      ip: {
        activeHost: (vmId) => ipSwitch.activeHost(vmId),
        notCurrentReason: (vmId, hostId) => ipSwitch.notCurrentReason(vmId, hostId),
        switchIp: (vmId, dest, opts) => ipSwitch.trigger(vmId, dest, opts),
        prepareSwitch: (vmId, dest, opts) => ipSwitch.prepare(vmId, dest, undefined, opts),
        nextFencingToken: () => ipSwitch.nextFencingToken(),
      },
      events: ctx.events,
      logger: log,
      locks,
      flushTimeoutMs: config.flushTimeoutMs,
      deviceStateTimeoutMs: config.deviceStateTimeoutMs,
      sourceCleanupDelayMs: config.sourceCleanupDelayMs,
    });
    binding.routes.installVmRoute(switchover);

    // "Best destination": the prediction module's rank (forecasts, history) for a VM it profiles
    // on its current host; otherwise its ranker (capacity alone without that module) over the hosts.
    const prediction = ctx.modules.get('prediction') as RunningPredictionModule | undefined;
    const fallbackRanker = prediction?.ranker ?? new CapacityHeadroomRanker();
    binding.routes.installRanker({
      hostIds: () => ctx.hosts.list().map((h) => h.facts.host_id),
      rank: (vmId, sourceHost) => {
        const hosts = ctx.hosts.list();
        if (prediction && prediction.hub.vmHost(vmId) === sourceHost) return prediction.hub.rank(vmId, hosts, { explainRejected: true });
        const source = hosts.find((h) => h.facts.host_id === sourceHost);
        return fallbackRanker.rank(vmViewOf(vmId, source, sourceHost), hosts.map((h) => hostViewOf(h, config.rankUsesHostLoad)), { explainRejected: true });
      },
    });
    // Automatic mode (the prediction policy decides when it calls): recommendations switch over.
    const auto = new AutoSwitchover({ routes: binding.routes, events: ctx.events, logger: log, cooldownMs: config.autoCooldownMs, maxConcurrent: config.autoMaxConcurrent });
    prediction?.setMigrationTrigger(auto.trigger);
    // The shadows this module switches to are the ones the ranker counts as warm.
    prediction?.hub.setWarmShadowHosts((vmId) =>
      warmShadowHosts(
        {
          activeHost: (id) => ipSwitch.activeHostOf(id),
          memoryShadow: (id) => memory.memoryShadow(id),
          hostIds: () => ctx.hosts.list().map((h) => h.facts.host_id),
          ipShadowCurrent: (id, hostId) => ipSwitch.notCurrentReason(id, hostId) === undefined,
        },
        vmId,
      ),
    );

    const recover = () =>
      switchover
        .recover()
        .then((evs) => evs.length > 0 && log.warn({ resolved: evs.map((e) => `${e.vm_id}:${e.status}`) }, 'unfinished switchovers resolved'))
        .catch((err) => log.error({ err: errorMessage(err) }, 'switchover recovery failed'));
    await recover();

    // The first sweep waits a full interval: right after a start it would dial every host at once.
    let lastStraySweep = Date.now();
    /** VMs whose memory follow failed or waits after a switchover: not before this time. */
    const followRetryAt = new Map<string, number>();
    /** VMs found not to run as a QEMU guest on their host ("vm@host"): asked again after this time. */
    const notAGuestUntil = new Map<string, number>();
    const offSwitchovers = ctx.events.subscribe((e) => {
      if (e.kind === 'EVENT_KIND_SWITCHOVER' && e.vm_id) followRetryAt.set(e.vm_id, Date.now() + MEMORY_FOLLOW_AFTER_SWITCHOVER_MS);
    });
    /** Memory shadows where the IP shadows are (memory_follows_shadows), for the QEMU guests among the VMs. */
    const followIpShadows = async (): Promise<void> => {
      for (const action of planMemoryFollow(ipSwitch.placements(), memory.memoryShadowRecords(), memory.memoryStoppedByOperator())) {
        if ((followRetryAt.get(action.vmId) ?? 0) > Date.now()) continue;
        if (action.kind === 'start' && (notAGuestUntil.get(`${action.vmId}@${action.source}`) ?? 0) > Date.now()) continue;
        await locks.run(action.vmId, async () => {
          // Planned before the lock: a switchover (which holds it) or an operator may have changed it meanwhile.
          if ((followRetryAt.get(action.vmId) ?? 0) > Date.now()) return;
          const placement = ipSwitch.placementOf(action.vmId);
          const again = planMemoryFollow(
            placement ? [placement] : [],
            memory.memoryShadowRecords().filter((r) => r.vm_id === action.vmId),
            memory.memoryStoppedByOperator(),
          )[0];
          if (!again) return;
          try {
            if (again.kind === 'stop') {
              await memory.stopMemoryShadow(again.vmId);
              log.info({ vmId: again.vmId, why: again.why }, 'memory shadow stopped: it followed the IP shadows');
              return;
            }
            // Only a QEMU guest running on that host has RAM to replicate (other VMs move their address only).
            // undefined: no such guest there (or no vm module at all); null: no answer.
            const src = await vms.query(again.source, again.vmId, 'local').catch((err) => (isUmbraError(err) && err.reason === 'UNIMPLEMENTED' ? undefined : null));
            if (src === null) {
              followRetryAt.set(again.vmId, Date.now() + MEMORY_FOLLOW_RETRY_MS); // the agent did not answer
              return;
            }
            if (!src?.running) {
              notAGuestUntil.set(`${again.vmId}@${again.source}`, Date.now() + MEMORY_FOLLOW_NOT_A_GUEST_MS);
              return;
            }
            await memory.startMemoryShadow(again.vmId, again.source, again.shadows, { auto: true });
            followRetryAt.delete(again.vmId);
            log.info({ vmId: again.vmId, source: again.source, shadows: again.shadows }, 'memory shadow follows the IP shadows');
          } catch (err) {
            followRetryAt.set(again.vmId, Date.now() + MEMORY_FOLLOW_RETRY_MS);
            log.warn({ vmId: again.vmId, err: errorMessage(err) }, 'memory shadow not moved with the IP shadows');
          }
        });
      }
    };
    /** Shadow VMs where the VM's RAM is shadowed, none elsewhere. */
    const reconcileShadowVms = async (): Promise<void> => {
      if (config.memoryFollowsShadows) await followIpShadows();
      const records = (await memory.listMemoryShadows()).map((v) => v.record);
      const wanted = new Map(records.map((r) => [r.vm_id, r]));
      for (const rec of records) {
        await locks.run(rec.vm_id, async () => {
          const src = await vms.query(rec.source_host, rec.vm_id, 'local').catch(() => undefined);
          if (!src?.definitionJson || !src.running) return;
          for (const host of rec.shadow_hosts) {
            const sh = await vms.query(host, rec.vm_id, 'shadow').catch(() => null);
            if (sh === null) continue; // host unreachable: next round
            if (sh && sh.status !== 'exited' && sh.definitionJson === src.definitionJson) continue;
            await vms
              .prepareShadow(host, rec.vm_id, src.definitionJson)
              .then((v) => log.info({ vmId: rec.vm_id, host, incoming: v.incomingUri }, 'shadow VM prepared'))
              .catch((err) => log.warn({ vmId: rec.vm_id, host, err: errorMessage(err) }, 'shadow VM not prepared'));
          }
        });
      }
      // Strays are rare (a retired shadow whose removal failed), and asking every host costs one
      // call per host per round, on the coordinator and on each idle agent: a slower sweep.
      if (Date.now() - lastStraySweep < config.strayShadowVmSweepMs) return;
      lastStraySweep = Date.now();
      for (const host of ctx.hosts.list()) {
        if (host.state !== 'HOST_STATE_UP') continue;
        const hostId = host.facts.host_id;
        const list = await vms.list(hostId).catch(() => []);
        for (const v of list) {
          if (v.role !== 'shadow' || wanted.get(v.vmId)?.shadow_hosts.includes(hostId)) continue;
          await locks.run(v.vmId, () => vms.removeShadow(hostId, v.vmId)).then(
            () => log.info({ vmId: v.vmId, host: hostId }, 'shadow VM retired'),
            (err) => log.warn({ vmId: v.vmId, host: hostId, err: errorMessage(err) }, 'shadow VM not retired'),
          );
        }
      }
    };
    let reconciling = false;
    const shadowTimer = setInterval(() => {
      if (reconciling) return;
      reconciling = true;
      reconcileShadowVms()
        .catch((err) => log.warn({ err: errorMessage(err) }, 'shadow VM reconciliation failed'))
        .finally(() => (reconciling = false));
    }, config.shadowVmIntervalMs);
    shadowTimer.unref();
    const recoverTimer = setInterval(() => void recover(), config.recoverIntervalMs);
    recoverTimer.unref();
    log.info({ pending: (await switchover.pending()).length }, 'switchover started');
    return {
      switchover,
      async close() {
        prediction?.setMigrationTrigger(undefined);
        prediction?.hub.setWarmShadowHosts(undefined);
        clearInterval(shadowTimer);
        clearInterval(recoverTimer);
        offSwitchovers();
        switchover.close();
      },
    };
  },
};

// Coordinator module `ipshadow`: VM IP registry fed by agents' lease reports, shadow placement
// (capacity-headroom ranker), lease backend, IP switchover (TriggerMigration) and reconciliation.
import { errorMessage } from '../../shared/errors';
import { KeyedMutex } from '../../shared/keyed-mutex';
import { migrationService } from '../api/migration-service';
import { shadowService } from '../api/shadow-service';
import type { CoordinatorModuleDefinition, RunningCoordinatorModule } from '../coordinator-module';
import { BuiltinLeaseBackend } from '../leases/builtin-lease-backend';
import { KeaLeaseBackend } from '../leases/kea-lease-backend';
import type { LeaseBackend } from '../leases/lease-backend';
import { FencingCounter } from '../migrate/fencing-counter';
import { IpReconciler } from '../migrate/ip-reconciler';
import { IpSwitchover } from '../migrate/ip-switchover';
import { CapacityHeadroomRanker } from '../rank/capacity-headroom-ranker';
import { predictionRanker } from '../predict/prediction-module';
import { GrpcAgentPorts } from './grpc-agent-ports';
import { type IpShadowCoordinatorConfig, parseIpShadowCoordinatorConfig } from './ipshadow-coordinator-config';
import { ShadowManager } from './shadow-manager';
import { ShadowRefreshLoop, bindShadowingPolicy, predictionShadowingPolicy } from './shadowing-policy';
import { VmIpRegistry } from './vm-ip-registry';

export const ipShadowCoordinatorModule: CoordinatorModuleDefinition<IpShadowCoordinatorConfig> = {
  name: 'ipshadow',
  parseConfig: parseIpShadowCoordinatorConfig,
  async start(config, ctx): Promise<RunningCoordinatorModule> {
    const log = ctx.logger;
    const leases: LeaseBackend =
      config.leaseBackend === 'kea' ? new KeaLeaseBackend({ controlSocket: config.kea.controlSocket, subnetId: config.kea.subnetId }) : new BuiltinLeaseBackend(ctx.store);
    const vms = await VmIpRegistry.open(ctx.store);
    const ports = new GrpcAgentPorts(ctx.agents);
    const hosts = { list: () => ctx.hosts.list(), awaitingContact: (id: string) => ctx.hosts.awaitingContact(id) };
    const shadows = await ShadowManager.open({
      store: ctx.store,
      vms,
      hosts,
      // The prediction module's forecast-aware ranker when it runs; capacity alone otherwise.
      ranker: predictionRanker(ctx.modules) ?? new CapacityHeadroomRanker(),
      agents: ports,
      events: ctx.events,
      policy: { shadowingThreshold: config.shadowingThreshold, maxShadowedVms: config.maxShadowedVms },
      useHostLoad: config.placementUsesHostLoad,
      logger: log,
      onShadowSet: async (vm, hostIds) => void (await leases.record(vm.config, vm.active_host, hostIds)),
    });
    // A new VM (or new config) gets its lease record and a placement round at once.
    const offChange = vms.onChange((vm) => {
      leases.record(vm.config, vm.active_host, shadows.list(vm.vm_id).map((s) => s.host_id)).catch((err) => log.warn({ vmId: vm.vm_id, err: errorMessage(err) }, 'lease record failed'));
      if (vm.version === 1) schedule();
    });
    const locks = new KeyedMutex();
    const fencing = new FencingCounter(ctx.store);
    const switchover = new IpSwitchover({ store: ctx.store, vms, shadows, agents: ports, leases, fencing, events: ctx.events, logger: log, locks });
    const reconciler = new IpReconciler({ vms, hosts, shadowHosts: (id) => shadows.list(id).map((s) => s.host_id), agents: ports, leases, fencing, events: ctx.events, locks, logger: log });

    let refreshing: Promise<unknown> | undefined;
    let lastHeld = 0;
    const refresh = () => {
      refreshing ??= shadows
        .refresh()
        .then((o) => {
          // Held shadows are logged when their count changes (not every round while hosts reconnect).
          if (o.placed || o.retired || o.pushed || o.held !== lastHeld) log.info(o, 'shadow placement round');
          lastHeld = o.held;
        })
        .catch((err) => log.error({ err: errorMessage(err) }, 'shadow placement failed'))
        .finally(() => (refreshing = undefined));
      return refreshing;
    };
    let soon: NodeJS.Timeout | undefined;
    function schedule() {
      if (soon) return;
      soon = setTimeout(() => {
        soon = undefined;
        void refresh();
      }, 0);
      soon.unref();
    }
    const refreshLoop = new ShadowRefreshLoop(() => void refresh(), config.shadowingRefreshIntervalMs);
    // The operator's policy (prediction module, `umbractl policy set`) overrides the config's knobs.
    const policySource = predictionShadowingPolicy(ctx.modules);
    const offPolicy = policySource ? bindShadowingPolicy(policySource, { manager: shadows, loop: refreshLoop, refreshNow: schedule, logger: log }) : () => undefined;
    let sweeping = false;
    const sweepTimer = setInterval(() => {
      if (sweeping) return;
      sweeping = true;
      reconciler
        .sweep()
        .then((o) => (o.fixed || o.alerts) && log.warn(o, 'reconciliation sweep'))
        .catch((err) => log.error({ err: errorMessage(err) }, 'reconciliation sweep failed'))
        .finally(() => (sweeping = false));
    }, config.reconcileIntervalMs);
    sweepTimer.unref();
    log.info({ leaseBackend: leases.name, vms: vms.list().length, shadows: shadows.list().length, ...shadows.policy, refreshIntervalMs: refreshLoop.intervalMs, policyFrom: policySource ? 'prediction policy' : 'config' }, 'ipshadow started');

    return {
      services: [shadowService({ vms, shadows, logger: log }), migrationService({ switchover, logger: log })],
      async close() {
        offPolicy();
        refreshLoop.close();
        clearInterval(sweepTimer);
        if (soon) clearTimeout(soon);
        offChange();
        shadows.close();
        await refreshing;
        await leases.close();
      },
    };
  },
};

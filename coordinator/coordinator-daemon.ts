// Assembles the coordinator: store, event log, host registry, gRPC server, metrics, liveness sweep.
import { Counter, Gauge } from 'prom-client';
import type { Logger } from 'pino';
import { LevelStore } from '../shared/level-store';
import { startGrpcServer, type RunningServer } from '../shared/grpc-server';
import { createRegistry, startMetricsServer, type MetricsServer } from '../shared/metrics-server';
import { loadTlsMaterial, serverCredentials } from '../shared/tls';
import { UmbraError } from '../shared/errors';
import type { CoordinatorConfig } from './config';
import { EventLog } from './core/event-log';
import { HostRegistry } from './core/host-registry';
import { coordinatorService } from './api/coordinator-service';
import { AgentClients } from './clients/agent-clients';
import type { CoordinatorModuleContext, RunningCoordinatorModule } from './coordinator-module';
import { COORDINATOR_MODULES } from './modules';

export interface CoordinatorDaemon {
  grpcPort: number;
  metricsPort: number;
  close(): Promise<void>;
}

export async function startCoordinator(config: CoordinatorConfig, logger: Logger): Promise<CoordinatorDaemon> {
  const tls = loadTlsMaterial(config.tls);
  if (tls.identity.role !== 'coordinator') {
    throw new UmbraError('INVALID_ARGUMENT', `tls.cert carries identity ${tls.identity.role}/${tls.identity.name}, not a coordinator identity`);
  }
  const store = await LevelStore.open(config.dataDir);
  const cleanups: Array<() => Promise<void>> = [() => store.close()];
  try {
    const events = await EventLog.open(store);
    const registry = await HostRegistry.open(store, events, config.liveness);

    const metrics = createRegistry('umbra_coordinator_');
    const hostsGauge = new Gauge({ name: 'umbra_coordinator_hosts', help: 'Known hosts by liveness state', labelNames: ['state'], registers: [metrics] });
    const eventsCounter = new Counter({ name: 'umbra_coordinator_events_total', help: 'Events appended to the audit log', labelNames: ['kind'], registers: [metrics] });
    const refreshGauge = () => {
      // One pass: listing (and sorting) every host three times per event showed in the
      // registration burst of 200 agents (coordinator-load profile).
      const counts = registry.countByState();
      for (const s of ['HOST_STATE_UP', 'HOST_STATE_SUSPECT', 'HOST_STATE_DOWN'] as const) {
        hostsGauge.set({ state: s.replace('HOST_STATE_', '').toLowerCase() }, counts[s]);
      }
    };
    const unsubscribe = events.subscribe((e) => {
      eventsCounter.inc({ kind: e.kind.replace('EVENT_KIND_', '').toLowerCase() });
      refreshGauge();
      logger.info({ event: e.kind, hostId: e.host_id, sequence: e.sequence }, e.message);
    });
    refreshGauge();
    cleanups.unshift(async () => unsubscribe());

    const agents = new AgentClients(registry, tls);
    cleanups.unshift(async () => agents.close());
    const started = new Map<string, RunningCoordinatorModule>();
    for (const def of COORDINATOR_MODULES) {
      const ctx: CoordinatorModuleContext = {
        store,
        dataDir: config.dataDir,
        events,
        hosts: registry,
        agents,
        logger: logger.child({ module: def.name }),
        metrics,
        tls,
        modules: started,
      };
      const m = await def.start(config.modules[def.name] as never, ctx);
      started.set(def.name, m);
      cleanups.unshift(() => m.close());
    }

    const server: RunningServer = await startGrpcServer({
      listen: config.listen,
      credentials: serverCredentials(tls),
      services: [
        coordinatorService({ registry, events, heartbeatIntervalMs: config.heartbeatIntervalMs, logger }),
        ...[...started.values()].flatMap((m) => m.services ?? []),
      ],
    });
    cleanups.unshift(() => server.close());

    const sweepTimer = setInterval(() => {
      registry.sweep().catch((err) => logger.error({ err }, 'liveness sweep failed'));
    }, config.liveness.sweepIntervalMs);
    sweepTimer.unref();
    cleanups.unshift(async () => clearInterval(sweepTimer));

    let metricsServer: MetricsServer | undefined;
    if (config.metricsListen) {
      metricsServer = await startMetricsServer(config.metricsListen, metrics);
      cleanups.unshift(() => metricsServer!.close());
    }
    logger.info({ listen: config.listen, port: server.port, dataDir: config.dataDir, hosts: registry.list().length }, 'coordinator started');
    return {
      grpcPort: server.port,
      metricsPort: metricsServer?.port ?? 0,
      close: async () => {
        for (const c of cleanups) await c().catch((err) => logger.warn({ err }, 'shutdown step failed'));
      },
    };
  } catch (err) {
    for (const c of cleanups) await c().catch(() => undefined);
    throw err;
  }
}

// Assembles the coordinator: store, event log, host registry, gRPC server, metrics, liveness sweep,
// then the capability modules (their services gated until all have started).
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
import { COORDINATOR_SERVICE, coordinatorService } from './api/coordinator-service';
import { AgentClients } from './clients/agent-clients';
import type { CoordinatorModuleContext, CoordinatorModuleDefinition, RunningCoordinatorModule } from './coordinator-module';
import { COORDINATOR_MODULES } from './modules';
import { ServiceGate, servicesInPackage } from './core/service-gate';
import { serviceDefinition, warmUpMessageCodecs } from '../shared/proto';

export interface CoordinatorDaemon {
  grpcPort: number;
  metricsPort: number;
  close(): Promise<void>;
}

export interface StartCoordinatorOptions {
  /** The capability modules, in start order (default COORDINATOR_MODULES; tests pass their own). */
  modules?: ReadonlyArray<CoordinatorModuleDefinition<never>>;
}

export async function startCoordinator(config: CoordinatorConfig, logger: Logger, opts: StartCoordinatorOptions = {}): Promise<CoordinatorDaemon> {
  const modules = opts.modules ?? COORDINATOR_MODULES;
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
    new Gauge({
      name: 'umbra_coordinator_hosts_awaiting_contact',
      help: 'Hosts known from the store and not heard from since the start, during the restart grace',
      registers: [metrics],
      collect() {
        this.set(registry.listAwaitingContact().length);
      },
    });

    // The gRPC server listens before the modules start (the switchover module recovers unfinished
    // switchovers in its start, calling agents): agents reconnect, register and heartbeat in the
    // meantime, and the modules' services answer UNAVAILABLE until every module is ready.
    const gate = new ServiceGate(servicesInPackage('umbra.coordinator.v1.').filter((n) => n !== COORDINATOR_SERVICE), 'the coordinator is starting (modules recovering)');
    const server: RunningServer = await startGrpcServer({
      listen: config.listen,
      credentials: serverCredentials(tls),
      services: [coordinatorService({ registry, events, heartbeatIntervalMs: config.heartbeatIntervalMs, logger }), ...gate.bindings()],
    });
    // Closed first at shutdown (no calls into closing modules), and on a failed start too.
    let serverClosing: Promise<void> | undefined;
    const closeServer = () => (serverClosing ??= server.close());
    cleanups.unshift(closeServer);
    for (const name of gate.serviceNames) server.setServing(name, 'NOT_SERVING');

    const sweepTimer = setInterval(() => {
      registry.sweep().catch((err) => logger.error({ err }, 'liveness sweep failed'));
    }, config.liveness.sweepIntervalMs);
    sweepTimer.unref();
    cleanups.unshift(async () => clearInterval(sweepTimer));

    const restored = registry.listAwaitingContact();
    if (restored.length > 0) {
      logger.info({ hosts: restored.length, restartGraceMs: config.liveness.restartGraceMs }, 'hosts known from the store await contact: no liveness verdict on them during the restart grace');
      const graceTimer = setTimeout(() => {
        const silent = registry.listNotHeardSinceStart();
        if (silent.length > 0) logger.warn({ count: silent.length, hosts: silent.slice(0, 100) }, 'restart grace over: hosts not heard from since the start are judged by liveness now');
        else logger.info('restart grace over: every known host was heard from');
      }, Math.max(0, registry.restartGraceEndsAtMs - Date.now()));
      graceTimer.unref();
      cleanups.unshift(async () => clearTimeout(graceTimer));
    }
    logger.info({ listen: config.listen, port: server.port }, 'gRPC server listening; capability modules starting');

    const agents = new AgentClients(registry, tls);
    cleanups.unshift(async () => agents.close());
    const started = new Map<string, RunningCoordinatorModule>();
    for (const def of modules) {
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
    // Every module is ready (recovery included): their services take calls from now on.
    const moduleServices = [...started.values()].flatMap((m) => m.services ?? []);
    // A module service outside the gated package (none today) is added as it is.
    for (const s of gate.open(moduleServices)) server.server.addService(serviceDefinition(s.name), s.handlers);
    for (const s of moduleServices) server.setServing(s.name, 'SERVING');
    cleanups.unshift(closeServer);

    let metricsServer: MetricsServer | undefined;
    if (config.metricsListen) {
      metricsServer = await startMetricsServer(config.metricsListen, metrics);
      cleanups.unshift(() => metricsServer!.close());
    }
    logger.info({ listen: config.listen, port: server.port, dataDir: config.dataDir, hosts: registry.list().length }, 'coordinator started');
    // Every message's codec built now (about 80 ms, once), not by the first switchover's calls.
    setImmediate(() => warmUpMessageCodecs());
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

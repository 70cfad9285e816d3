// Assembles the agent: store, gRPC server, metrics, capability probe, coordinator link.
import os from 'node:os';
import path from 'node:path';
import { Gauge } from 'prom-client';
import type { Logger } from 'pino';
import { UmbraError, errorMessage } from '../shared/errors';
import { LevelStore } from '../shared/level-store';
import { startGrpcServer } from '../shared/grpc-server';
import { createRegistry, startMetricsServer } from '../shared/metrics-server';
import { channelCredentials, loadTlsMaterial, serverCredentials } from '../shared/tls';
import { formatIdentity } from '../shared/peer-identity';
import type { HostFacts, HostUsage } from '../shared/host-types';
import { programVersion } from '../shared/version';
import { compactHeap } from '../shared/heap-compaction';
import { type AgentConfig, advertisedEndpoint } from './config';
import { agentService } from './api/agent-service';
import { GrpcCoordinatorPort } from './clients/grpc-coordinator-port';
import { CoordinatorLink } from './core/coordinator-link';
import { buildHealthReport } from './core/health-report';
import { EpochAdvanceClock, buildHostView, collectHostViewParts } from './core/host-view';
import { RecentErrors } from './core/recent-errors';
import { type CapabilityStatus, probeCapabilities } from './os/capability-probe';
import { AGENT_MODULE_NAMES, moduleApi, type AgentModuleContext, type RunningAgentModule } from './agent-module';
import { AGENT_MODULES } from './modules';
import { dial } from '../shared/grpc-client';
import { probeHostCapacity } from './os/sysinfo-host-facts';
import { ProcCpuUsage } from './os/proc-cpu-usage';

const CAPABILITY_REFRESH_MS = 300_000;
/** How often shadow images' applied epochs are sampled (the shadow-side memory lag's resolution). */
const EPOCH_SAMPLE_MS = 1000;
const POST_START_COMPACTION_DELAY_MS = 2000;
const STORE_SUBDIR = 'state';

export interface AgentDaemon {
  grpcPort: number;
  close(): Promise<void>;
}

const cpuUsage = new ProcCpuUsage();

/** What each heartbeat carries: CPU busy share since the last beat, and memory. */
function currentUsage(): HostUsage {
  return {
    cpu_load_ratio: cpuUsage.sample(),
    memory_used_bytes: os.totalmem() - os.freemem(),
    memory_available_bytes: os.freemem(),
  };
}

/** A module's own report of a facility (what it actually uses) replaces the start-up probe's guess. */
function mergeCapabilities(probed: CapabilityStatus[], fromModules: CapabilityStatus[]): CapabilityStatus[] {
  const reported = new Set(fromModules.map((c) => c.name));
  return [...probed.filter((c) => !reported.has(c.name)), ...fromModules];
}

export async function startAgent(config: AgentConfig, logger: Logger): Promise<AgentDaemon> {
  const tls = loadTlsMaterial(config.tls);
  if (tls.identity.role !== 'agent' || tls.identity.name !== config.hostId) {
    throw new UmbraError(
      'INVALID_ARGUMENT',
      `tls.cert carries identity ${formatIdentity(tls.identity)}, but this agent is agent/${config.hostId} (host_id)`,
    );
  }
  const startedAtMs = Date.now();
  const storePath = path.join(config.dataDir, STORE_SUBDIR);
  const store = await LevelStore.open(storePath);
  const storeHealth = { path: storePath, ok: true, error: '' };
  const errors = new RecentErrors();
  const cleanups: Array<() => Promise<void>> = [() => store.close()];
  try {
    const boots = ((await store.get<number>('agent/boot_count')) ?? 0) + 1;
    await store.put('agent/boot_count', boots);

    let capabilities: CapabilityStatus[] = await probeCapabilities();
    const capacity = await probeHostCapacity();
    let facts: HostFacts | undefined;

    const metrics = createRegistry('umbra_agent_');
    const running = new Map<string, RunningAgentModule>();
    const coordinatorCredentials = channelCredentials(tls, { role: 'coordinator' });
    const moduleContext: AgentModuleContext = {
      hostId: config.hostId,
      listen: config.listen,
      dataDir: config.dataDir,
      shadowImageDir: config.shadowImageDir,
      store,
      logger,
      metrics,
      tls,
      coordinatorClient: (service) => dial(service, config.coordinator, coordinatorCredentials),
      reportError: (m) => errors.add(m),
      modules: running,
    };
    const modules: RunningAgentModule[] = [];
    for (const def of AGENT_MODULES) {
      const m = await def.start(config.modules[def.name] as never, { ...moduleContext, logger: logger.child({ module: def.name }) });
      modules.push(m);
      running.set(def.name, m);
      cleanups.unshift(() => m.close());
    }

    const link = { current: undefined as CoordinatorLink | undefined };
    const epochClock = new EpochAdvanceClock();
    // Only live sessions move their epoch, and they are in memory: sampling them every second reads
    // no store (an idle agent's timers are its CPU floor).
    const replication = moduleApi<{ liveImages(): Array<{ vmId: string; epoch: number; connected: boolean }> }>(running, AGENT_MODULE_NAMES.replication, 'liveImages');
    if (replication) {
      const sampleImages = replication.liveImages.bind(replication);
      const epochTimer = setInterval(() => epochClock.observe(sampleImages(), Date.now()), EPOCH_SAMPLE_MS);
      epochTimer.unref();
      cleanups.unshift(async () => clearInterval(epochTimer));
    }
    const health = async () => {
      const [moduleHealth, parts] = await Promise.all([
        Promise.all(modules.map((m) => m.health?.() ?? { problems: [], capabilities: [] })),
        collectHostViewParts(running, (m) => errors.add(m)),
      ]);
      epochClock.observe(parts.images, Date.now());
      const view = buildHostView(parts, Date.now(), epochClock);
      try {
        await store.put('agent/last_health_check_ms', Date.now());
        Object.assign(storeHealth, { ok: true, error: '' });
      } catch (err) {
        Object.assign(storeHealth, { ok: false, error: errorMessage(err) });
      }
      return buildHealthReport({
        hostId: config.hostId,
        version: programVersion(),
        startedAtMs,
        nowMs: Date.now(),
        coordinatorEndpoint: config.coordinator,
        link: link.current!.current,
        store: storeHealth,
        certificate: { identity: formatIdentity(tls.identity), notAfterMs: tls.notAfterMs },
        capabilities: mergeCapabilities(capabilities, moduleHealth.flatMap((h) => h.capabilities)),
        lastErrors: errors.lines(),
        moduleProblems: moduleHealth.flatMap((h) => h.problems),
        vms: view.vms,
        shadows: view.shadows,
      });
    };

    const server = await startGrpcServer({
      listen: config.listen,
      credentials: serverCredentials(tls),
      services: [agentService({ hostId: config.hostId, health, facts: () => facts!, logger }), ...modules.flatMap((m) => m.services ?? [])],
    });
    cleanups.unshift(() => server.close());
    facts = {
      host_id: config.hostId,
      failure_domain: config.failureDomain,
      capacity,
      agent_endpoint: advertisedEndpoint(config, server.port),
      agent_version: programVersion(),
    };
    await store.put('agent/facts', facts);

    const port = new GrpcCoordinatorPort(config.coordinator, coordinatorCredentials);
    link.current = new CoordinatorLink(port, () => facts!, currentUsage, config.heartbeatIntervalMs, logger, (m) => errors.add(m));
    link.current.start();
    cleanups.unshift(async () => {
      link.current!.close();
      port.close();
    });

    const capTimer = setInterval(() => {
      probeCapabilities().then(
        (c) => (capabilities = c),
        (err) => errors.add(`capability probe: ${errorMessage(err)}`),
      );
    }, CAPABILITY_REFRESH_MS);
    capTimer.unref();
    cleanups.unshift(async () => clearInterval(capTimer));

    if (config.metricsListen) {
      new Gauge({
        name: 'umbra_agent_coordinator_connected',
        help: '1 when registered with the coordinator and streaming heartbeats',
        registers: [metrics],
        collect() {
          this.set(link.current?.current.state === 'COORDINATOR_LINK_STATE_CONNECTED' ? 1 : 0);
        },
      });
      new Gauge({
        name: 'umbra_agent_capability_available',
        help: '1 when the named host facility works',
        labelNames: ['capability'],
        registers: [metrics],
        collect() {
          for (const c of capabilities) this.set({ capability: c.name }, c.available ? 1 : 0);
        },
      });
      const ms = await startMetricsServer(config.metricsListen, metrics);
      cleanups.unshift(() => ms.close());
    }
    logger.info({ hostId: config.hostId, port: server.port, endpoint: facts.agent_endpoint, boots, coordinator: config.coordinator }, 'agent started');
    // Start-up garbage (host probing, proto loading) would stay resident until V8's next major GC.
    setTimeout(compactHeap, POST_START_COMPACTION_DELAY_MS).unref();
    return {
      grpcPort: server.port,
      close: async () => {
        for (const c of cleanups) await c().catch((err) => logger.warn({ err }, 'shutdown step failed'));
      },
    };
  } catch (err) {
    for (const c of cleanups) await c().catch(() => undefined);
    throw err;
  }
}

// The coordinator's config file (/etc/umbra/coordinator.yaml): parsed, defaulted and checked.
import { ConfigReader } from '../shared/config-reader';
import { readTlsSection } from '../shared/tls-config';
import type { TlsPaths } from '../shared/tls';
import type { CoordinatorModuleDefinition } from './coordinator-module';
import { COORDINATOR_MODULES } from './modules';

export const DEFAULT_COORDINATOR_CONFIG_PATH = '/etc/umbra/coordinator.yaml';
const DEFAULT_LISTEN = '0.0.0.0:7700';
const DEFAULT_DATA_DIR = '/var/lib/umbra/coordinator';
const DEFAULT_METRICS_LISTEN = '127.0.0.1:9700';
const DEFAULT_HEARTBEAT_INTERVAL_MS = 1000;
const DEFAULT_SUSPECT_AFTER_MS = 5000;
const DEFAULT_DOWN_AFTER_MS = 15000;
/**
 * Agents back off up to 10 s (agent/core/backoff.ts) between reconnects while the coordinator is
 * down: 30 s covers that plus the default down timeout before a restored host gets a verdict.
 */
const DEFAULT_RESTART_GRACE_MS = 30_000;

export interface CoordinatorConfig {
  listen: string;
  dataDir: string;
  /** Empty string disables the metrics endpoint. */
  metricsListen: string;
  tls: TlsPaths;
  heartbeatIntervalMs: number;
  liveness: { suspectAfterMs: number; downAfterMs: number; restartGraceMs: number; sweepIntervalMs: number };
  /** Parsed config sections of the capability modules, by module name. */
  modules: Record<string, unknown>;
}

const TOP_KEYS = ['listen', 'data_dir', 'metrics_listen', 'tls', 'heartbeat_interval_ms', 'liveness'] as const;

export function parseCoordinatorConfig(
  raw: unknown,
  source: string,
  modules: ReadonlyArray<CoordinatorModuleDefinition<never>> = COORDINATOR_MODULES,
): CoordinatorConfig {
  const r = new ConfigReader(source);
  const root = r.mapping(raw, '', [...TOP_KEYS, ...modules.map((m) => m.name)]);
  const liveness = r.mapping(root.liveness, 'liveness', ['suspect_after_ms', 'down_after_ms', 'restart_grace_ms']);
  const heartbeatIntervalMs = r.integer(root, 'heartbeat_interval_ms', '', { default: DEFAULT_HEARTBEAT_INTERVAL_MS, min: 100, max: 60_000 });
  const suspectAfterMs = r.integer(liveness, 'suspect_after_ms', 'liveness', { default: DEFAULT_SUSPECT_AFTER_MS, min: 200 });
  const downAfterMs = r.integer(liveness, 'down_after_ms', 'liveness', { default: DEFAULT_DOWN_AFTER_MS, min: 200 });
  const restartGraceMs = r.integer(liveness, 'restart_grace_ms', 'liveness', { default: DEFAULT_RESTART_GRACE_MS, min: 0, max: 3_600_000 });
  if (downAfterMs <= suspectAfterMs) r.problem('liveness.down_after_ms', `must be greater than liveness.suspect_after_ms (${suspectAfterMs})`);
  if (suspectAfterMs <= heartbeatIntervalMs) r.problem('liveness.suspect_after_ms', `must be greater than heartbeat_interval_ms (${heartbeatIntervalMs})`);
  const metricsListen = root.metrics_listen === '' ? '' : r.hostPort(root, 'metrics_listen', '', { default: DEFAULT_METRICS_LISTEN });
  const config: CoordinatorConfig = {
    listen: r.hostPort(root, 'listen', '', { default: DEFAULT_LISTEN }),
    dataDir: r.string(root, 'data_dir', '', { default: DEFAULT_DATA_DIR }),
    metricsListen,
    tls: readTlsSection(r, root, { ca: '/etc/umbra/pki/ca.crt', cert: '/etc/umbra/pki/coordinator.crt', key: '/etc/umbra/pki/coordinator.key' }),
    heartbeatIntervalMs,
    // Sweep often enough that a state change is seen within a fifth of the suspect timeout.
    liveness: { suspectAfterMs, downAfterMs, restartGraceMs, sweepIntervalMs: Math.max(50, Math.floor(suspectAfterMs / 5)) },
    modules: Object.fromEntries(modules.map((m) => [m.name, m.parseConfig(r, root[m.name], m.name)])),
  };
  r.finish();
  return config;
}

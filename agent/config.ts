// The agent's config file (/etc/umbra/agent.yaml): parsed, defaulted and checked.
import os from 'node:os';
import path from 'node:path';
import { ConfigReader, type Mapping } from '../shared/config-reader';
import { IDENTITY_NAME } from '../shared/peer-identity';
import { readTlsSection } from '../shared/tls-config';
import type { TlsPaths } from '../shared/tls';
import type { AgentModuleDefinition } from './agent-module';
import { AGENT_MODULES } from './modules';

export const DEFAULT_AGENT_CONFIG_PATH = '/etc/umbra/agent.yaml';
const DEFAULT_LISTEN = '0.0.0.0:7701';
const DEFAULT_COORDINATOR = '127.0.0.1:7700';
const DEFAULT_DATA_DIR = '/var/lib/umbra/agent';
const DEFAULT_METRICS_LISTEN = '127.0.0.1:9701';
const DEFAULT_FAILURE_DOMAIN = 'default';
const DEFAULT_HEARTBEAT_INTERVAL_MS = 1000;

export interface AgentConfig {
  hostId: string;
  failureDomain: string;
  listen: string;
  /** host:port the coordinator dials; derived from `listen` and the host's addresses when empty. */
  advertise: string;
  coordinator: string;
  dataDir: string;
  /**
   * Where shadow images (the guest RAM of shadow QEMUs, and of guests promoted here) live:
   * `<data_dir>/shadow` unless set; a tmpfs keeps them off disk.
   */
  shadowImageDir: string;
  metricsListen: string;
  tls: TlsPaths;
  heartbeatIntervalMs: number;
  /** Parsed config sections of the capability modules, by module name. */
  modules: Record<string, unknown>;
}

const TOP_KEYS = ['host_id', 'failure_domain', 'listen', 'advertise', 'coordinator', 'data_dir', 'shadow_image_dir', 'metrics_listen', 'tls', 'heartbeat_interval_ms'] as const;

export function parseAgentConfig(
  raw: unknown,
  source: string,
  modules: ReadonlyArray<AgentModuleDefinition<never>> = AGENT_MODULES,
): AgentConfig {
  const r = new ConfigReader(source);
  const root = r.mapping(raw, '', [...TOP_KEYS, ...modules.map((m) => m.name)]);
  const hint = "must be 1-63 letters, digits, '.', '_', '@' or '-'";
  const dataDir = r.string(root, 'data_dir', '', { default: DEFAULT_DATA_DIR });
  const config: AgentConfig = {
    hostId: r.string(root, 'host_id', '', { default: os.hostname().split('.')[0], pattern: IDENTITY_NAME, patternHint: hint }),
    failureDomain: r.string(root, 'failure_domain', '', { default: DEFAULT_FAILURE_DOMAIN, pattern: IDENTITY_NAME, patternHint: hint }),
    listen: r.hostPort(root, 'listen', '', { default: DEFAULT_LISTEN }),
    advertise: root.advertise === '' || root.advertise === undefined ? '' : r.hostPort(root, 'advertise', ''),
    coordinator: r.hostPort(root, 'coordinator', '', { default: DEFAULT_COORDINATOR }),
    dataDir,
    shadowImageDir: root.shadow_image_dir === undefined ? path.resolve(dataDir, 'shadow') : shadowImageDir(r, root),
    metricsListen: root.metrics_listen === '' ? '' : r.hostPort(root, 'metrics_listen', '', { default: DEFAULT_METRICS_LISTEN }),
    tls: readTlsSection(r, root, { ca: '/etc/umbra/pki/ca.crt', cert: '/etc/umbra/pki/agent.crt', key: '/etc/umbra/pki/agent.key' }),
    heartbeatIntervalMs: r.integer(root, 'heartbeat_interval_ms', '', { default: DEFAULT_HEARTBEAT_INTERVAL_MS, min: 100, max: 60_000 }),
    modules: Object.fromEntries(modules.map((m) => [m.name, m.parseConfig(r, root[m.name], m.name)])),
  };
  r.finish();
  return config;
}

/** QEMU takes the image as mem-path=...: an absolute path, and a comma would end the option. */
function shadowImageDir(r: ConfigReader, root: Mapping): string {
  const dir = r.string(root, 'shadow_image_dir', '');
  if (typeof root.shadow_image_dir !== 'string') return dir; // reported by r.string
  if (!path.isAbsolute(dir)) r.problem('shadow_image_dir', `must be an absolute path, got '${dir}'`);
  else if (/[,\n\0]/.test(dir)) r.problem('shadow_image_dir', 'must not contain a comma or a newline (QEMU reads it as mem-path=...)');
  return dir;
}

/** The endpoint to register: `advertise`, or the listen port on the first non-loopback IPv4 address. */
export function advertisedEndpoint(config: AgentConfig, boundPort: number): string {
  if (config.advertise) return config.advertise;
  const host = config.listen.slice(0, config.listen.lastIndexOf(':'));
  if (host !== '0.0.0.0' && host !== '[::]') return `${host}:${boundPort}`;
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.family === 'IPv4' && !a.internal) return `${a.address}:${boundPort}`;
    }
  }
  return `127.0.0.1:${boundPort}`;
}

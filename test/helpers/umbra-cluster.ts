// Runs real coordinator and agent processes inside NetnsLab namespaces joined by a management
// bridge, with generated certificates and configs, for integration tests and the lab.
import { type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { daemonNodeFlags } from '../../shared/daemon-node-flags';
import type { TlsPaths } from '../../shared/tls';
import { type NetnsLab, waitFor } from './netns';

export const REPO_ROOT = path.join(__dirname, '..', '..', '..');
export const DIST = path.join(REPO_ROOT, 'dist');
export const AGENT_MAIN = path.join(DIST, 'agent', 'main.js');
export const COORDINATOR_MAIN = path.join(DIST, 'coordinator', 'main.js');
export const UMBRACTL = path.join(DIST, 'coordinator', 'cli', 'umbractl.js');
export const GRPC_CALL = path.join(DIST, 'test', 'helpers', 'grpc-call-cli.js');

export const MGMT_BRIDGE = 'mgmt';
export const MGMT_PREFIX = '10.77.0';
export const COORDINATOR_PORT = 7700;
export const AGENT_PORT = 7701;

export interface ProcessHandle {
  ns: string;
  child: ChildProcess;
  log: string[];
}

/** The node flags the packaged launcher of `main` passes (none for other scripts). */
export function launcherNodeFlags(main: string | undefined): string[] {
  if (main === COORDINATOR_MAIN) return daemonNodeFlags('coordinator');
  if (main === AGENT_MAIN) return daemonNodeFlags('agent');
  return [];
}

/** Starts node with `args` inside `ns`, keeping its output for diagnostics. */
export function startNode(lab: NetnsLab, ns: string, args: string[], env: Record<string, string> = {}): ProcessHandle {
  // UMBRA_DAEMON_NODE_ARGS: node flags for every daemon started here (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
  const nodeArgs = [...launcherNodeFlags(args[0]), ...(process.env.UMBRA_DAEMON_NODE_ARGS ?? '').split(/\s+/).filter(Boolean)];
  const child = lab.spawn(ns, process.execPath, [...nodeArgs, ...args], { env: { ...process.env, UMBRA_LOG_LEVEL: 'info', ...env } });
  const log: string[] = [];
  const keep = (d: Buffer) => {
    log.push(...d.toString().split('\n').filter(Boolean));
    if (log.length > 400) log.splice(0, log.length - 400);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return { ns, child, log };
}

export function writeYaml(file: string, value: unknown): string {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, stringify(value));
  return file;
}

export function coordinatorConfig(dir: string, tls: TlsPaths, liveness = { suspect_after_ms: 1500, down_after_ms: 3000 }): string {
  return writeYaml(path.join(dir, 'coordinator.yaml'), {
    listen: `0.0.0.0:${COORDINATOR_PORT}`,
    data_dir: path.join(dir, 'data'),
    metrics_listen: `127.0.0.1:9700`,
    heartbeat_interval_ms: 300,
    liveness,
    tls,
  });
}

export function agentConfig(dir: string, hostId: string, address: string, coordinatorAddress: string, tls: TlsPaths, extra: Record<string, unknown> = {}): string {
  return writeYaml(path.join(dir, 'agent.yaml'), {
    host_id: hostId,
    failure_domain: `rack-${hostId}`,
    listen: `0.0.0.0:${AGENT_PORT}`,
    advertise: `${address}:${AGENT_PORT}`,
    coordinator: `${coordinatorAddress}:${COORDINATOR_PORT}`,
    data_dir: path.join(dir, 'data'),
    metrics_listen: `127.0.0.1:9701`,
    heartbeat_interval_ms: 300,
    tls,
    ...extra,
  });
}

/** Runs umbractl inside `ns` with the operator identity and parses its --json output. */
export async function umbractlJson<T>(lab: NetnsLab, ns: string, operator: TlsPaths, coordinatorAddress: string, args: string[]): Promise<T> {
  const out = await lab.exec(ns, process.execPath, [
    UMBRACTL,
    '--coordinator',
    `${coordinatorAddress}:${COORDINATOR_PORT}`,
    '--ca',
    operator.ca,
    '--cert',
    operator.cert,
    '--key',
    operator.key,
    ...args,
    '--json',
  ]);
  return JSON.parse(out) as T;
}

export async function waitForLog(p: ProcessHandle, pattern: RegExp, what: string, timeoutMs = 15000): Promise<void> {
  await waitFor(what, async () => p.log.some((l) => pattern.test(l)), timeoutMs);
}

// `umbra-agent health`: asks the local agent for its health over mTLS with the agent's own
// identity; when it cannot, says why and shows what the host offers. Exit 0 only when healthy.
import { errorMessage } from '../../shared/errors';
import { callUnary, dial } from '../../shared/grpc-client';
import { channelCredentials, loadTlsMaterial } from '../../shared/tls';
import { loadConfig } from '../../shared/daemon-runner';
import { parseAgentConfig } from '../config';
import type { HealthReport } from '../core/health-report';
import { probeCapabilities } from '../os/capability-probe';
import { AGENT_SERVICE } from '../api/agent-service';
import { type HealthView, formatHealth } from './health-format';

const HEALTH_DEADLINE_MS = 3000;
export const EXIT_HEALTHY = 0;
export const EXIT_UNHEALTHY = 1;
export const EXIT_NO_CONFIG = 2;

function localEndpoint(listen: string): string {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i);
  const port = listen.slice(i + 1);
  return `${host === '0.0.0.0' ? '127.0.0.1' : host === '[::]' ? '[::1]' : host}:${port}`;
}

export async function runHealthCommand(opts: { configPath: string; json: boolean }): Promise<number> {
  const view: HealthView = { reachable: false, endpoint: '', problems: [] };
  let exit = EXIT_UNHEALTHY;
  try {
    const config = loadConfig(opts.configPath, parseAgentConfig);
    view.endpoint = localEndpoint(config.listen);
    const tls = loadTlsMaterial(config.tls, opts.configPath);
    const client = dial(AGENT_SERVICE, view.endpoint, channelCredentials(tls, { role: 'agent', name: config.hostId }));
    try {
      view.report = await callUnary<HealthReport>(client, 'GetHealth', {}, HEALTH_DEADLINE_MS);
      view.reachable = true;
      exit = view.report.healthy ? EXIT_HEALTHY : EXIT_UNHEALTHY;
    } catch (err) {
      view.problems.push(`agent not reachable at ${view.endpoint}: ${errorMessage(err)}`);
    } finally {
      client.close();
    }
  } catch (err) {
    view.problems.push(errorMessage(err));
    exit = EXIT_NO_CONFIG;
  }
  if (!view.reachable) view.localCapabilities = await probeCapabilities();
  if (opts.json) {
    process.stdout.write(JSON.stringify({ healthy: exit === EXIT_HEALTHY, reachable: view.reachable, endpoint: view.endpoint, problems: view.problems, report: view.report ?? null, local_capabilities: view.localCapabilities ?? null }, null, 2) + '\n');
  } else {
    process.stdout.write(formatHealth(view));
  }
  return exit;
}

#!/usr/bin/env node
// umbra-agent: the per-host daemon, and its local health command.
import { parseArgs } from 'node:util';
import { EXIT_CONFIG_ERROR, loadConfig, runDaemon } from '../shared/daemon-runner';
import { errorMessage } from '../shared/errors';
import { programVersion } from '../shared/version';
import { DEFAULT_AGENT_CONFIG_PATH, parseAgentConfig } from './config';
import { startAgent } from './agent-daemon';
import { runHealthCommand } from './cli/health-command';

const HELP = `umbra-agent ${programVersion()}: Umbra's per-host agent

Usage:
  umbra-agent [run] [--config FILE]       start the daemon (runs as root; logs JSON to stdout)
  umbra-agent health [--json] [--config FILE]
                                          one screen on the local agent; exit 0 healthy,
                                          1 unhealthy or unreachable, 2 no usable config
  umbra-agent check-config [--config FILE]
  umbra-agent --version | --help

Options:
  -c, --config FILE   config file (default ${DEFAULT_AGENT_CONFIG_PATH}, or $UMBRA_AGENT_CONFIG)
  --json              machine-readable output (health)

Environment: UMBRA_LOG_LEVEL (trace..fatal, default info), UMBRA_TRACE (named tracers).
`;

function main(): void {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'V' },
      },
    });
  } catch (err) {
    process.stderr.write(`umbra-agent: ${errorMessage(err)}\n\n${HELP}`);
    process.exit(2);
  }
  const { values, positionals } = parsed;
  if (values.help) return void process.stdout.write(HELP);
  if (values.version) return void process.stdout.write(`${programVersion()}\n`);
  const configPath = values.config ?? process.env.UMBRA_AGENT_CONFIG ?? DEFAULT_AGENT_CONFIG_PATH;
  const command = positionals[0] ?? 'run';
  switch (command) {
    case 'run':
      void runDaemon({ component: 'agent', configPath, parse: parseAgentConfig, start: startAgent });
      return;
    case 'health':
      runHealthCommand({ configPath, json: values.json === true }).then((code) => process.exit(code));
      return;
    case 'check-config':
      try {
        loadConfig(configPath, parseAgentConfig);
        process.stdout.write(`${configPath}: ok\n`);
      } catch (err) {
        process.stderr.write(`${errorMessage(err)}\n`);
        process.exit(EXIT_CONFIG_ERROR);
      }
      return;
    default:
      process.stderr.write(`umbra-agent: unknown command '${command}'\n\n${HELP}`);
      process.exit(2);
  }
}

main();

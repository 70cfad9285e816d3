#!/usr/bin/env node
// umbra-coordinator: the control plane daemon.
import { parseArgs } from 'node:util';
import { runDaemon, loadConfig, EXIT_CONFIG_ERROR } from '../shared/daemon-runner';
import { errorMessage } from '../shared/errors';
import { programVersion } from '../shared/version';
import { DEFAULT_COORDINATOR_CONFIG_PATH, parseCoordinatorConfig } from './config';
import { startCoordinator } from './coordinator-daemon';

const HELP = `umbra-coordinator ${programVersion()}: Umbra's control plane

Usage:
  umbra-coordinator [run] [--config FILE]     start the daemon (logs JSON to stdout)
  umbra-coordinator check-config [--config FILE]
                                              validate the config file and exit
  umbra-coordinator --version | --help

Options:
  -c, --config FILE   config file (default ${DEFAULT_COORDINATOR_CONFIG_PATH}, or $UMBRA_COORDINATOR_CONFIG)

Environment: UMBRA_LOG_LEVEL (trace..fatal, default info), UMBRA_TRACE (named tracers).
`;

function main(): void {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'V' } },
    });
  } catch (err) {
    process.stderr.write(`umbra-coordinator: ${errorMessage(err)}\n\n${HELP}`);
    process.exit(2);
  }
  const { values, positionals } = parsed;
  if (values.help) return void process.stdout.write(HELP);
  if (values.version) return void process.stdout.write(`${programVersion()}\n`);
  const configPath = values.config ?? process.env.UMBRA_COORDINATOR_CONFIG ?? DEFAULT_COORDINATOR_CONFIG_PATH;
  const command = positionals[0] ?? 'run';
  if (command === 'check-config') {
    try {
      loadConfig(configPath, parseCoordinatorConfig);
      process.stdout.write(`${configPath}: ok\n`);
    } catch (err) {
      process.stderr.write(`${errorMessage(err)}\n`);
      process.exit(EXIT_CONFIG_ERROR);
    }
    return;
  }
  if (command !== 'run') {
    process.stderr.write(`umbra-coordinator: unknown command '${command}'\n\n${HELP}`);
    process.exit(2);
  }
  void runDaemon({ component: 'coordinator', configPath, parse: parseCoordinatorConfig, start: startCoordinator });
}

main();

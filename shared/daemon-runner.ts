// Common life cycle of both daemons: read and check the config (every mistake reported, exit 2,
// nothing touched), start, stop cleanly on SIGTERM/SIGINT.
import { InvalidConfigError, errorMessage, isUmbraError } from './errors';
import { readYamlFile } from './config-reader';
import { createLogger } from './log';
import type { Logger } from 'pino';

export const EXIT_CONFIG_ERROR = 2;
export const EXIT_START_ERROR = 1;

export function loadConfig<C>(path: string, parse: (raw: unknown, source: string) => C): C {
  return parse(readYamlFile(path), path);
}

export async function runDaemon<C>(opts: {
  component: string;
  configPath: string;
  parse: (raw: unknown, source: string) => C;
  start: (config: C, logger: Logger) => Promise<{ close(): Promise<void> }>;
}): Promise<void> {
  let config: C;
  try {
    config = loadConfig(opts.configPath, opts.parse);
  } catch (err) {
    process.stderr.write(`${opts.component}: ${errorMessage(err)}\n`);
    process.exit(err instanceof InvalidConfigError ? EXIT_CONFIG_ERROR : EXIT_START_ERROR);
  }
  const logger = createLogger(opts.component);
  let daemon: { close(): Promise<void> };
  try {
    daemon = await opts.start(config, logger);
  } catch (err) {
    logger.error({ err: isUmbraError(err) ? { reason: err.reason, message: err.message } : err }, 'failed to start');
    process.stderr.write(`${opts.component}: ${errorMessage(err)}\n`);
    process.exit(err instanceof InvalidConfigError ? EXIT_CONFIG_ERROR : EXIT_START_ERROR);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    daemon.close().then(
      () => process.exit(0),
      (err) => {
        logger.error({ err }, 'unclean stop');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

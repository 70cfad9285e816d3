// Structured JSON logs (pino) to stdout for journald, plus opt-in named tracers.
// Level: UMBRA_LOG_LEVEL (default info). Tracers: UMBRA_TRACE=netlink,pcap,stream (or "all").
import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

let root: Logger | undefined;

function rootLogger(): Logger {
  if (!root) {
    root = pino({
      level: process.env.UMBRA_LOG_LEVEL ?? 'info',
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    });
  }
  return root;
}

/** Replaces the root logger (tests send logs to a buffer, CLIs to stderr). */
export function setRootLogger(logger: Logger): void {
  root = logger;
}

export function createLogger(component: string, fields: Record<string, unknown> = {}): Logger {
  return rootLogger().child({ component, ...fields });
}

const enabledTracers = new Set(
  (process.env.UMBRA_TRACE ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
);

/** True when the named tracer was switched on with UMBRA_TRACE; guard hot-path debug logs with it. */
export function isTracing(name: string): boolean {
  return enabledTracers.has('all') || enabledTracers.has(name);
}

/** A logger that writes nothing, for CLIs and tests that must keep stdout clean. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

// Runs trigger-migration-cli in a namespace: connected before the measurement, fired during it,
// ended after it (its exit stalls this machine for some ms, see that file).
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { ChildProcess } from 'node:child_process';
import type { NetnsLab } from './netns';
import type { TriggerReport } from './trigger-migration-cli';

const TRIGGER_CLI = path.join(__dirname, 'trigger-migration-cli.js');
const CONNECT_TIMEOUT_MS = 20000;

export interface TriggerClient {
  child: ChildProcess;
  /** Makes the call; resolves with the report once the switchover has an outcome. */
  fire(): Promise<TriggerReport>;
  /** Lets the client exit and waits for it. */
  close(): Promise<void>;
}

/** `p`, or an error naming `what` after `ms` or once the client has exited and its output is read. */
function awaitLine<T>(p: Promise<T>, child: ChildProcess, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let onExit: (() => void) | undefined;
  const failed = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for: ${what}`)), ms);
    onExit = () => reject(new Error(`the trigger client exited before: ${what}`));
    child.once('close', onExit);
  });
  return Promise.race([p, failed]).finally(() => {
    clearTimeout(timer);
    child.off('close', onExit!);
  });
}

export async function startTriggerClient(
  lab: NetnsLab,
  ns: string,
  opts: { endpoint: string; identity: { ca: string; cert: string; key: string }; vm: string; destination: string; timeoutMs: number },
): Promise<TriggerClient> {
  const { endpoint, identity, vm, destination, timeoutMs } = opts;
  const child = lab.spawn(ns, process.execPath, [TRIGGER_CLI, endpoint, identity.ca, identity.cert, identity.key, vm, destination, String(timeoutMs)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let connected!: () => void;
  let reported!: (line: string) => void;
  const ready = new Promise<void>((resolve) => (connected = resolve));
  const report = new Promise<string>((resolve) => (reported = resolve));
  createInterface({ input: child.stdout! }).on('line', (l) => {
    if (l.includes('"ready"')) connected();
    else if (l.startsWith('{')) reported(l);
  });
  const close = async () => {
    child.stdin!.end();
    await lab.stop(child, 2000);
  };
  try {
    await awaitLine(ready, child, CONNECT_TIMEOUT_MS, 'trigger client connected');
  } catch (err) {
    await close();
    throw err;
  }
  return {
    child,
    fire: async () => {
      child.stdin!.write('go\n');
      return JSON.parse(await awaitLine(report, child, timeoutMs + 60000, 'switchover outcome')) as TriggerReport;
    },
    close,
  };
}

// Launches a QEMU process from a VM definition, waits for its QMP socket, and stops it by PID.
// Also attaches to a QEMU it did not start (found by discovery), which it then only signals by PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import { createLogger, type Logger } from '../../shared/log';
import { UnavailableError } from '../../shared/errors';
import { QmpClient, type QmpClientOptions } from './qmp-client';
import { toQemuArgs, type QemuArgsOptions, type VmDefinition } from './vm-definition';

export const DEFAULT_QEMU_BINARY = 'qemu-system-x86_64';
/** How long a fresh QEMU may take to open its QMP socket (TCG start-up on a busy host is slow). */
export const DEFAULT_QMP_READY_TIMEOUT_MS = 20000;
const QMP_POLL_INTERVAL_MS = 50;
const STDERR_KEEP_BYTES = 8192;
const EXIT_POLL_INTERVAL_MS = 100;
const DEFAULT_STOP_GRACE_MS = 3000;

let logger: Logger | undefined;
/** Created on first use, so a program can install its root logger after importing this file. */
function log(): Logger {
  return (logger ??= createLogger('qemu-process'));
}

export interface LaunchQemuOptions {
  def: VmDefinition;
  args?: QemuArgsOptions;
  qemuBinary?: string;
  /** Shared library put into LD_PRELOAD (the memory helper's userfaultfd library). */
  preloadLibraryPath?: string;
  extraEnv?: Record<string, string>;
  /** Command the QEMU invocation is wrapped in, e.g. ['ip', 'netns', 'exec', 'ns1'] (must exec in place). */
  wrapper?: string[];
  qmpReadyTimeoutMs?: number;
  qmp?: QmpClientOptions;
}

export interface QemuExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class QemuProcess {
  readonly pid: number;
  readonly qmp: QmpClient;
  /** The definition the process runs (for attached processes: as reconstructed by discovery). */
  readonly def: VmDefinition | undefined;
  readonly serialLogPath: string | undefined;
  private readonly child: ChildProcess | undefined;
  private readonly exitPromise: Promise<QemuExit>;
  private exitInfo: QemuExit | undefined;
  private startExitWatch: () => void = () => undefined;

  private readonly stderrTail: () => string;

  constructor(pid: number, qmp: QmpClient, opts: { child?: ChildProcess; def?: VmDefinition; serialLogPath?: string; stderrTail?: () => string }) {
    this.pid = pid;
    this.stderrTail = opts.stderrTail ?? (() => '');
    this.qmp = qmp;
    this.child = opts.child;
    this.def = opts.def;
    this.serialLogPath = opts.serialLogPath;
    const child = opts.child;
    if (child) {
      this.exitPromise = new Promise<QemuExit>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
        else child.once('exit', (code, signal) => resolve({ code, signal }));
      }).then((e) => (this.exitInfo = e));
    } else {
      // Not our child: no exit event, so watch the PID. Polling starts with the first waiter
      // (and keeps the process alive while someone waits), not at construction.
      let started = false;
      let resolveExit: (e: QemuExit) => void = () => undefined;
      const promise = new Promise<QemuExit>((resolve) => (resolveExit = resolve)).then((e) => (this.exitInfo = e));
      this.startExitWatch = () => {
        if (started) return;
        started = true;
        const poll = setInterval(() => {
          if (!isPidAlive(pid)) {
            clearInterval(poll);
            resolveExit({ code: null, signal: null });
          }
        }, EXIT_POLL_INTERVAL_MS);
      };
      this.exitPromise = promise;
    }
  }

  /** Resolves when the process has exited. */
  get exited(): Promise<QemuExit> {
    this.startExitWatch();
    return this.exitPromise;
  }

  get running(): boolean {
    return this.exitInfo === undefined && isPidAlive(this.pid);
  }

  /** The last few KiB QEMU wrote to stderr (only for processes we started). */
  get stderr(): string {
    return this.stderrTail();
  }

  /** The guest's serial console output so far ('' when there is none yet). */
  async readSerialLog(): Promise<string> {
    if (!this.serialLogPath) return '';
    return fs.readFile(this.serialLogPath, 'utf8').catch(() => '');
  }

  /** QMP quit, then SIGTERM, then SIGKILL, each after `graceMs`; always by this process's PID. */
  async stop(graceMs = DEFAULT_STOP_GRACE_MS): Promise<QemuExit> {
    if (this.exitInfo) return this.exitInfo;
    if (!this.qmp.closed) await this.qmp.quit(graceMs).catch(() => undefined);
    if (await this.waitExit(graceMs)) return this.exitInfo!;
    this.signal('SIGTERM');
    if (await this.waitExit(graceMs)) return this.exitInfo!;
    return this.kill();
  }

  /** SIGKILL by PID and wait for the exit. */
  async kill(): Promise<QemuExit> {
    if (this.exitInfo) return this.exitInfo;
    this.signal('SIGKILL');
    const e = await this.exited;
    this.qmp.close();
    return e;
  }

  close(): void {
    this.qmp.close();
  }

  private signal(sig: NodeJS.Signals): void {
    try {
      if (this.child) this.child.kill(sig);
      else process.kill(this.pid, sig);
    } catch {
      // already gone
    }
  }

  private async waitExit(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const done = await Promise.race([
      this.exited.then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms))),
    ]);
    clearTimeout(timer);
    return done;
  }
}

/** True while `pid` exists and is not a zombie (an exited QEMU whose parent has not reaped it). */
export function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Starts QEMU for `def` and returns once QMP answers; on failure the process is killed. */
export async function launchQemu(options: LaunchQemuOptions): Promise<QemuProcess> {
  const { def } = options;
  const qmpPath = options.args?.qmpSocketPath ?? def.qmpSocketPath;
  const serialLogPath = options.args?.serialLogPath ?? def.serialLogPath;
  await fs.rm(qmpPath, { force: true });
  const argv = [options.qemuBinary ?? DEFAULT_QEMU_BINARY, ...toQemuArgs(def, options.args)];
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.extraEnv };
  const preload = options.preloadLibraryPath ? [options.preloadLibraryPath, env.LD_PRELOAD].filter(Boolean).join(':') : undefined;
  let full = argv;
  if (options.wrapper?.length) {
    // The preload must reach QEMU itself, not the wrapper (a library may consume LD_PRELOAD in the
    // first process it loads into): env(1) sets it right before exec'ing QEMU, keeping the PID.
    full = [...options.wrapper, ...(preload ? ['env', `LD_PRELOAD=${preload}`] : []), ...argv];
  } else if (preload) {
    env.LD_PRELOAD = preload;
  }
  const child = spawn(full[0], full.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-STDERR_KEEP_BYTES);
  });
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  const exited = new Promise<QemuExit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const deadline = Date.now() + (options.qmpReadyTimeoutMs ?? DEFAULT_QMP_READY_TIMEOUT_MS);
  let qmp: QmpClient | undefined;
  let lastErr: unknown;
  while (!qmp) {
    const outcome = await Promise.race([
      spawnError.then((e) => ({ kind: 'error' as const, e })),
      exited.then((x) => ({ kind: 'exit' as const, x })),
      new Promise<{ kind: 'tick' }>((r) => setTimeout(() => r({ kind: 'tick' }), QMP_POLL_INTERVAL_MS)),
    ]);
    if (outcome.kind === 'error') throw new UnavailableError(`cannot start ${argv[0]}: ${outcome.e.message}`, { cause: outcome.e });
    if (outcome.kind === 'exit') {
      throw new UnavailableError(`QEMU for VM ${def.id} exited (code ${outcome.x.code}, signal ${outcome.x.signal}) before QMP was ready: ${stderr.trim()}`);
    }
    try {
      qmp = await QmpClient.connect(qmpPath, options.qmp);
    } catch (err) {
      lastErr = err;
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new UnavailableError(`QEMU for VM ${def.id} did not open QMP at ${qmpPath}: ${(lastErr as Error).message}; stderr: ${stderr.trim()}`);
      }
    }
  }
  log().info({ vmId: def.id, pid: child.pid, incoming: options.args?.incoming, ramFile: options.args?.ramFile }, 'qemu started');
  return new QemuProcess(child.pid!, qmp, { child, def, serialLogPath, stderrTail: () => stderr });
}

/** Connects to an already running QEMU (not started by us); stop()/kill() signal it by PID. */
export async function attachQemu(pid: number, qmpSocketPath: string, opts: { def?: VmDefinition; serialLogPath?: string; qmp?: QmpClientOptions } = {}): Promise<QemuProcess> {
  if (!isPidAlive(pid)) throw new UnavailableError(`QEMU process ${pid} is not running`);
  const qmp = await QmpClient.connect(qmpSocketPath, opts.qmp);
  return new QemuProcess(pid, qmp, { def: opts.def, serialLogPath: opts.serialLogPath ?? opts.def?.serialLogPath });
}

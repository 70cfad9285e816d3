// Starts netns-net-runner in a lab namespace and calls it: one request at a time, in order.
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { NetnsLab } from '../../helpers/netns';
import type { RunnerRequest, RunnerResponse } from './netns-net-runner';

export const RUNNER_PATH = join(__dirname, 'netns-net-runner.js');

export class RunnerCallError extends Error {
  constructor(
    readonly remoteName: string,
    readonly reason: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = remoteName;
  }
}

export interface NetRunnerOptions {
  fencingDir?: string;
  announceCount?: number;
  announceIntervalMs?: number;
}

export class NetRunner {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private stderr = '';

  private constructor(
    private readonly lab: NetnsLab,
    readonly child: ChildProcess,
  ) {
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      const res = JSON.parse(line) as RunnerResponse;
      const p = this.pending.get(res.id);
      if (!p) return;
      this.pending.delete(res.id);
      if (res.ok) p.resolve(res.result);
      else p.reject(new RunnerCallError(res.error!.name, res.error!.reason, res.error!.message));
    });
    child.stderr!.on('data', (d) => (this.stderr += d.toString()));
    child.once('exit', (code) => {
      for (const p of this.pending.values()) p.reject(new Error(`runner exited with ${code}: ${this.stderr.trim()}`));
      this.pending.clear();
    });
  }

  static start(lab: NetnsLab, ns: string, options: NetRunnerOptions = {}): NetRunner {
    const args = [RUNNER_PATH];
    if (options.fencingDir) args.push('--fencing-dir', options.fencingDir);
    if (options.announceCount !== undefined) args.push('--announce-count', String(options.announceCount));
    if (options.announceIntervalMs !== undefined) args.push('--announce-interval-ms', String(options.announceIntervalMs));
    const child = lab.spawn(ns, process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    return new NetRunner(lab, child);
  }

  call<T = unknown>(req: Omit<RunnerRequest, 'id'>): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.stdin!.write(JSON.stringify({ ...req, id }) + '\n');
    });
  }

  activate(spec: unknown, fencingToken?: number) {
    return this.call<RunnerApplyResult>({ op: 'activate', spec, fencingToken });
  }

  /** IpApplier.admit: the token admitted and the interfaces resolved for the switch that follows. */
  admit(spec: unknown, fencingToken?: number) {
    return this.call<{ totalMs: number }>({ op: 'admit', spec, fencingToken });
  }

  deactivate(spec: unknown, fencingToken?: number) {
    return this.call<RunnerApplyResult>({ op: 'deactivate', spec, fencingToken });
  }

  table<T = unknown>(table: RunnerRequest['table'], method: string, ...args: unknown[]) {
    return this.call<T>({ op: 'table', table, method, args });
  }

  /** Closes the runner's sockets and store, then waits for it to exit. */
  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    await this.call({ op: 'close' }).catch(() => undefined);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))]);
    await this.lab.stop(this.child, 500);
  }
}

export interface RunnerApplyResult {
  vmId: string;
  action: string;
  changed: boolean;
  steps: Array<{ step: string; durationMs: number; changed: boolean }>;
  totalMs: number;
  frames?: number;
  fencing?: { token: number; previousToken?: number; reapplied: boolean };
}

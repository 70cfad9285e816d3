// Network-namespace test lab: hosts are namespaces, joined by bridges that live in a private
// "switch" namespace, so nothing touches the machine's own network. Everything created is
// recorded and removed by cleanup(), which tests call from `after.always` (also on failure).
// Processes started here are ended by PID, and only those.
import { spawn, execFile, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** Namespaces made by tests carry this prefix, so a crashed run's leftovers can be recognised. */
export const TEST_NETNS_PREFIX = 'umbt';

let labCounter = 0;

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

export async function run(cmd: string, args: string[], options: { input?: string } = {}): Promise<string> {
  try {
    const { stdout } = await execFileP(cmd, args, { maxBuffer: 64 * 1024 * 1024 });
    void options;
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`);
  }
}

export interface LinkSpec {
  /** Bridge name, created on first use inside the switch namespace. */
  bridge: string;
  /** Interface name inside the namespace, e.g. eth0. */
  ifname: string;
  /** Address with prefix, e.g. 10.77.0.2/24; omit for an L2-only port. */
  address?: string;
  /** Fixed MAC, e.g. for a guest whose DHCP identity matters. */
  mac?: string;
}

export class NetnsLab {
  readonly id: string;
  readonly switchNs: string;
  private readonly namespaces: string[] = [];
  private readonly bridges = new Set<string>();
  private readonly children = new Set<ChildProcess>();
  private vethCounter = 0;

  constructor(tag = 't') {
    // The owner's PID is part of the name so leftovers of dead runs can be told from live ones.
    this.id = `${TEST_NETNS_PREFIX}${tag.replace(/[0-9]/g, '')}${process.pid}x${labCounter++}`;
    this.switchNs = `${this.id}-sw`;
  }

  async start(): Promise<void> {
    await this.createNs(this.switchNs);
  }

  /** Creates a namespace `<lab>-<name>` with loopback up and returns its full name. */
  async addHost(name: string): Promise<string> {
    const ns = `${this.id}-${name}`;
    await this.createNs(ns);
    return ns;
  }

  private async createNs(ns: string): Promise<void> {
    await run('ip', ['netns', 'add', ns]);
    this.namespaces.push(ns);
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }

  async ensureBridge(bridge: string): Promise<void> {
    if (this.bridges.has(bridge)) return;
    await run('ip', ['-n', this.switchNs, 'link', 'add', bridge, 'type', 'bridge']);
    // Forward at once: STP learning delays would look like switchover gaps.
    await run('ip', ['-n', this.switchNs, 'link', 'set', bridge, 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0']);
    await run('ip', ['-n', this.switchNs, 'link', 'set', bridge, 'up']);
    this.bridges.add(bridge);
  }

  /** Connects `ns` to a bridge with a veth pair; returns the switch-side port name. */
  async link(ns: string, spec: LinkSpec): Promise<string> {
    await this.ensureBridge(spec.bridge);
    const n = this.vethCounter++;
    const outer = `v${process.pid % 10000}p${n}`.slice(0, 15);
    const inner = `v${process.pid % 10000}q${n}`.slice(0, 15);
    await run('ip', ['link', 'add', outer, 'netns', this.switchNs, 'type', 'veth', 'peer', 'name', inner, 'netns', ns]);
    await run('ip', ['-n', ns, 'link', 'set', inner, 'name', spec.ifname]);
    if (spec.mac) await run('ip', ['-n', ns, 'link', 'set', spec.ifname, 'address', spec.mac]);
    if (spec.address) await run('ip', ['-n', ns, 'addr', 'add', spec.address, 'dev', spec.ifname]);
    await run('ip', ['-n', ns, 'link', 'set', spec.ifname, 'up']);
    await run('ip', ['-n', this.switchNs, 'link', 'set', outer, 'master', spec.bridge]);
    await run('ip', ['-n', this.switchNs, 'link', 'set', outer, 'up']);
    return outer;
  }

  /** Runs a command inside `ns` to completion and returns its stdout. */
  exec(ns: string, cmd: string, args: string[]): Promise<string> {
    return run('ip', ['netns', 'exec', ns, cmd, ...args]);
  }

  /** Starts a long-running process inside `ns`; it is killed by PID in cleanup(). */
  spawn(ns: string, cmd: string, args: string[], options: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** Ends one process started by spawn(): SIGTERM, then SIGKILL after `graceMs`. */
  async stop(child: ChildProcess, graceMs = 3000): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }

  async cleanup(): Promise<void> {
    await Promise.all([...this.children].map((c) => this.stop(c, 1000).catch(() => undefined)));
    for (const ns of this.namespaces.reverse()) {
      await run('ip', ['netns', 'del', ns]).catch(() => undefined);
    }
    this.namespaces.length = 0;
  }
}

/** Waits until `probe` resolves truthy, polling every `intervalMs`; throws with `what` on timeout. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 15000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${(lastErr as Error).message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

// Entry point run inside a test/bench namespace (`ip netns exec NS node netns-net-runner.js`): holds
// the netlink tables, GarpSender, IpApplier and (optionally) a LevelStore-backed FencingGuard of
// that namespace and serves JSON-line commands on stdin, one JSON-line answer each on stdout.
// Node cannot change its own namespace, so this is how a test drives the agent's code in a "host".
import { createInterface } from 'node:readline';
import { FencingGuard } from '../../../agent/net/fencing-guard';
import { GarpSender } from '../../../agent/net/garp-sender';
import { IpApplier } from '../../../agent/net/ip-applier';
import { parseIpActivationSpec } from '../../../agent/net/ip-activation-spec';
import { createNetlinkTables } from '../../../agent/net/netlink-tables';
import type { Announcement } from '../../../agent/net/ports';
import { LevelStore } from '../../../shared/level-store';
import { setRootLogger, silentLogger } from '../../../shared/log';

export interface RunnerRequest {
  id: number;
  op: 'activate' | 'deactivate' | 'admit' | 'prepare' | 'announce' | 'table' | 'close';
  spec?: unknown;
  fencingToken?: number;
  announcement?: Announcement;
  table?: 'links' | 'addresses' | 'routes' | 'neighbors' | 'fdb';
  method?: string;
  args?: unknown[];
}

export interface RunnerResponse {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: { name: string; reason?: string; message: string };
}

async function main(): Promise<void> {
  setRootLogger(silentLogger());
  const argv = process.argv.slice(2);
  const opt = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const fencingDir = opt('--fencing-dir');
  const store = fencingDir ? await LevelStore.open(fencingDir) : undefined;
  const tables = createNetlinkTables();
  const announcer = new GarpSender();
  const applier = new IpApplier(tables, announcer, {
    announceCount: Number(opt('--announce-count') ?? 3),
    announceIntervalMs: Number(opt('--announce-interval-ms') ?? 20),
    ...(store ? { fencing: new FencingGuard(store) } : {}),
  });

  const handle = async (req: RunnerRequest): Promise<unknown> => {
    switch (req.op) {
      case 'activate':
      case 'deactivate': {
        const r = await applier[req.op](parseIpActivationSpec(req.spec), req.fencingToken === undefined ? {} : { fencingToken: req.fencingToken });
        const frames = r.announcement ? await r.announcement : undefined;
        const { announcement: _a, ...rest } = r;
        void _a;
        return { ...rest, frames };
      }
      case 'admit':
        return applier.admit(parseIpActivationSpec(req.spec), req.fencingToken === undefined ? {} : { fencingToken: req.fencingToken });
      case 'prepare':
        applier.prepare(parseIpActivationSpec(req.spec));
        return null;
      case 'announce':
        return announcer.announce(req.announcement!).finished;
      case 'table': {
        const table = tables[req.table!] as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
        return table[req.method!](...(req.args ?? []));
      }
      case 'close':
        await applier.close();
        tables.close();
        await store?.close();
        return null;
    }
  };

  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (!line.trim()) continue;
    const req = JSON.parse(line) as RunnerRequest;
    let res: RunnerResponse;
    try {
      res = { id: req.id, ok: true, result: await handle(req) };
    } catch (err) {
      const e = err as Error & { reason?: string };
      res = { id: req.id, ok: false, error: { name: e.name, reason: e.reason, message: e.message } };
    }
    process.stdout.write(JSON.stringify(res) + '\n');
    if (req.op === 'close') break;
  }
  process.exit(0);
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`runner failed: ${(err as Error).stack}\n`);
    process.exit(1);
  });
}

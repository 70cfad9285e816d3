// KvStore on LevelDB (classic-level via `level`), values encoded with msgpackr.
import { mkdirSync } from 'node:fs';
import { Level } from 'level';
import { Packr } from 'msgpackr';
import { UmbraError } from './errors';
import type { KvBatchOp, KvListOptions, KvStore } from './kv-store';

const packr = new Packr({ useRecords: false, moreTypes: true });

export class LevelStore implements KvStore {
  private constructor(private readonly db: Level<string, Buffer>) {}

  /** Opens (creating if needed) the store in `dir`. Fails with UNAVAILABLE if another process holds it. */
  static async open(dir: string): Promise<LevelStore> {
    mkdirSync(dir, { recursive: true });
    const db = new Level<string, Buffer>(dir, { keyEncoding: 'utf8', valueEncoding: 'buffer' });
    try {
      await db.open();
    } catch (err) {
      throw new UmbraError('UNAVAILABLE', `cannot open store at ${dir}: ${(err as Error).cause ?? (err as Error).message}`, {
        cause: err,
      });
    }
    return new LevelStore(db);
  }

  async get<T>(key: string): Promise<T | undefined> {
    const raw = await this.db.get(key);
    return raw === undefined ? undefined : (packr.unpack(raw) as T);
  }

  async put(key: string, value: unknown): Promise<void> {
    await this.db.put(key, packr.pack(value), { sync: true });
  }

  async del(key: string): Promise<void> {
    await this.db.del(key, { sync: true });
  }

  async batch(ops: KvBatchOp[]): Promise<void> {
    await this.db.batch(
      ops.map((op) =>
        op.type === 'put'
          ? { type: 'put' as const, key: op.key, value: packr.pack(op.value) }
          : { type: 'del' as const, key: op.key },
      ),
      { sync: true },
    );
  }

  async list<T>(prefix: string, options: KvListOptions = {}): Promise<Array<{ key: string; value: T }>> {
    const out: Array<{ key: string; value: T }> = [];
    // '\xff' sorts after every character used in keys, so [prefix, prefix+'\xff') is the prefix range.
    for await (const [key, value] of this.db.iterator({
      ...(options.after !== undefined && options.after >= prefix ? { gt: options.after } : { gte: prefix }),
      lt: prefix + '\xff',
      reverse: options.reverse ?? false,
      limit: options.limit ?? -1,
    })) {
      out.push({ key, value: packr.unpack(value) as T });
    }
    return out;
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}

// KvStore fake on a Map; values are deep-copied so tests see what a real store would return.
import type { KvBatchOp, KvStore } from '../../../../shared/kv-store';

export class MemoryKvStore implements KvStore {
  readonly data = new Map<string, unknown>();
  puts = 0;

  async get<T>(key: string): Promise<T | undefined> {
    return this.data.has(key) ? (structuredClone(this.data.get(key)) as T) : undefined;
  }
  async put(key: string, value: unknown): Promise<void> {
    this.puts++;
    this.data.set(key, structuredClone(value));
  }
  async del(key: string): Promise<void> {
    this.data.delete(key);
  }
  async batch(ops: KvBatchOp[]): Promise<void> {
    for (const op of ops) {
      if (op.type === 'put') await this.put(op.key, op.value);
      else await this.del(op.key);
    }
  }
  async list<T>(prefix: string, options: { reverse?: boolean; limit?: number } = {}): Promise<Array<{ key: string; value: T }>> {
    let keys = [...this.data.keys()].filter((k) => k.startsWith(prefix)).sort();
    if (options.reverse) keys.reverse();
    if (options.limit !== undefined && options.limit >= 0) keys = keys.slice(0, options.limit);
    return keys.map((key) => ({ key, value: structuredClone(this.data.get(key)) as T }));
  }
  async close(): Promise<void> {}
}

// KvStore kept in a sorted Map, for unit tests of components that persist.
import type { KvBatchOp, KvListOptions, KvStore } from '../../shared/kv-store';

export class MemoryKvStore implements KvStore {
  readonly data = new Map<string, unknown>();
  failNextWrite?: Error;

  private clone<T>(v: T): T {
    return v === undefined ? v : structuredClone(v);
  }

  private checkFail(): void {
    if (this.failNextWrite) {
      const e = this.failNextWrite;
      this.failNextWrite = undefined;
      throw e;
    }
  }

  async get<T>(key: string): Promise<T | undefined> {
    return this.clone(this.data.get(key) as T | undefined);
  }
  async put(key: string, value: unknown): Promise<void> {
    this.checkFail();
    this.data.set(key, this.clone(value));
  }
  async del(key: string): Promise<void> {
    this.checkFail();
    this.data.delete(key);
  }
  async batch(ops: KvBatchOp[]): Promise<void> {
    this.checkFail();
    for (const op of ops) {
      if (op.type === 'put') this.data.set(op.key, this.clone(op.value));
      else this.data.delete(op.key);
    }
  }
  async list<T>(prefix: string, o: KvListOptions = {}): Promise<Array<{ key: string; value: T }>> {
    let keys = [...this.data.keys()].filter((k) => k.startsWith(prefix) && (o.after === undefined || k > o.after)).sort();
    if (o.reverse) keys.reverse();
    if (o.limit !== undefined && o.limit >= 0) keys = keys.slice(0, o.limit);
    return keys.map((key) => ({ key, value: this.clone(this.data.get(key) as T) }));
  }
  async close(): Promise<void> {}
}

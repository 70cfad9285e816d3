// The persistence port both programs use: a sorted key-value store with msgpack values.
// Keys are strings with `/`-separated prefixes (`host/<id>`, `event/<seq>`).

export interface KvBatchOp {
  type: 'put' | 'del';
  key: string;
  value?: unknown;
}

export interface KvStore {
  get<T>(key: string): Promise<T | undefined>;
  put(key: string, value: unknown): Promise<void>;
  del(key: string): Promise<void>;
  /** Applies all operations atomically: either every one is durable or none is. */
  batch(ops: KvBatchOp[]): Promise<void>;
  /** Entries whose key starts with `prefix`, in key order. */
  list<T>(prefix: string, options?: { reverse?: boolean; limit?: number }): Promise<Array<{ key: string; value: T }>>;
  close(): Promise<void>;
}

// The persistence port both programs use: a sorted key-value store with msgpack values.
// Keys are strings with `/`-separated prefixes (`host/<id>`, `event/<seq>`).

export interface KvBatchOp {
  type: 'put' | 'del';
  key: string;
  value?: unknown;
}

export interface KvListOptions {
  reverse?: boolean;
  limit?: number;
  /** Exclusive lower bound (a full key), for paging forward. */
  after?: string;
}

export interface KvStore {
  get<T>(key: string): Promise<T | undefined>;
  put(key: string, value: unknown): Promise<void>;
  del(key: string): Promise<void>;
  /** Applies all operations atomically: either every one is durable or none is. */
  batch(ops: KvBatchOp[]): Promise<void>;
  /** Entries whose key starts with `prefix`, in key order; `after` skips keys up to and including it. */
  list<T>(prefix: string, options?: KvListOptions): Promise<Array<{ key: string; value: T }>>;
  close(): Promise<void>;
}

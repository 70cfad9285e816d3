// Fencing tokens for IP (de)activation: every token is higher than any handed out before, across
// coordinator restarts (the counter is persisted before the token is used).
import type { KvBatchOp, KvStore } from '../../shared/kv-store';
import { SerialQueue } from '../../shared/serial-queue';

const KEY = 'ipshadow/fencing/last';

export class FencingCounter {
  private readonly queue = new SerialQueue();

  constructor(private readonly store: KvStore) {}

  /**
   * The next token, persisted before it is returned. `alsoWrite` adds operations (e.g. a journal
   * entry naming the token) to the same atomic store write, so both cost one durable write.
   */
  next(alsoWrite?: (token: number) => KvBatchOp[]): Promise<number> {
    return this.queue.run(async () => {
      const last = (await this.store.get<number>(KEY)) ?? 0;
      const token = last + 1;
      if (alsoWrite) await this.store.batch([{ type: 'put', key: KEY, value: token }, ...alsoWrite(token)]);
      else await this.store.put(KEY, token);
      return token;
    });
  }

  /** Raises the counter past a token seen elsewhere (an agent that accepted a higher one). */
  raiseTo(token: number): Promise<void> {
    return this.queue.run(async () => {
      const last = (await this.store.get<number>(KEY)) ?? 0;
      if (token > last) await this.store.put(KEY, token);
    });
  }
}

// The coordinator's audit log: events numbered without gaps, persisted before listeners hear of
// them, so a watcher that resumes from a sequence number misses nothing.
import type { KvStore } from '../../shared/kv-store';
import type { UmbraEvent } from '../../shared/host-types';

const KEY_PREFIX = 'event/';
/** Fixed-width keys keep LevelDB's lexical order equal to sequence order. */
const key = (seq: number) => `${KEY_PREFIX}${seq.toString().padStart(16, '0')}`;

export type EventInput = Omit<UmbraEvent, 'sequence' | 'timestamp_unix_ms' | 'vm_id' | 'attributes'> &
  Partial<Pick<UmbraEvent, 'vm_id' | 'attributes'>>;

export type EventListener = (event: UmbraEvent) => void;

export class EventLog {
  private lastSequence = 0;
  private readonly listeners = new Set<EventListener>();

  private constructor(private readonly store: KvStore, private readonly now: () => number) {}

  static async open(store: KvStore, now: () => number = Date.now): Promise<EventLog> {
    const log = new EventLog(store, now);
    const last = await store.list<UmbraEvent>(KEY_PREFIX, { reverse: true, limit: 1 });
    log.lastSequence = last[0]?.value.sequence ?? 0;
    return log;
  }

  /** The persist-ops for an event, so callers can commit it atomically with the state it describes. */
  prepare(input: EventInput): { event: UmbraEvent; op: { type: 'put'; key: string; value: UmbraEvent } } {
    const event: UmbraEvent = { vm_id: '', attributes: {}, ...input, sequence: ++this.lastSequence, timestamp_unix_ms: this.now() };
    return { event, op: { type: 'put', key: key(event.sequence), value: event } };
  }

  /** Tells listeners about an event whose op has been committed. */
  publish(event: UmbraEvent): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch {
        // A failing watcher must not stop the others or the caller.
      }
    }
  }

  async append(input: EventInput): Promise<UmbraEvent> {
    const { event, op } = this.prepare(input);
    await this.store.batch([op]);
    this.publish(event);
    return event;
  }

  async list(afterSequence: number, limit: number): Promise<UmbraEvent[]> {
    const out = await this.store.list<UmbraEvent>(KEY_PREFIX, { after: afterSequence > 0 ? key(afterSequence) : undefined, limit });
    return out.map((e) => e.value);
  }

  get last(): number {
    return this.lastSequence;
  }

  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

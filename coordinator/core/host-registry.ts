// The coordinator's view of hosts: registration, heartbeats and liveness, persisted so a
// restarted coordinator knows its hosts, with every change recorded in the event log.
// After a restart, hosts restored from the store and not heard from yet are "awaiting contact":
// during the restart grace they keep their stored state and the sweep leaves them alone (no
// event), because their agents are still backing off; once it ends, silent ones go SUSPECT, DOWN.
import { NotFoundError } from '../../shared/errors';
import type { KvBatchOp, KvStore } from '../../shared/kv-store';
import { EMPTY_USAGE, type HostFacts, type HostRecord, type HostState, type HostUsage } from '../../shared/host-types';
import { SerialQueue } from '../../shared/serial-queue';
import type { EventLog } from './event-log';
import { type LivenessTimeouts, livenessState, restoredHostState } from './host-liveness';

const KEY_PREFIX = 'host/';
const key = (hostId: string) => `${KEY_PREFIX}${hostId}`;

export class HostRegistry {
  private readonly hosts = new Map<string, HostRecord>();
  private readonly queue = new SerialQueue();
  private hardRevision = 0;
  /** Hosts restored from the store at open() and not heard from (heartbeat, registration) since. */
  private readonly notHeardSinceStart = new Set<string>();
  private readonly startedAtMs: number;

  /** Changes on every registration, state change and removal (not on plain heartbeats). */
  get revision(): number {
    return this.hardRevision;
  }

  private constructor(
    private readonly store: KvStore,
    private readonly events: EventLog,
    private readonly timeouts: LivenessTimeouts,
    private readonly now: () => number,
  ) {
    this.startedAtMs = now();
  }

  static async open(store: KvStore, events: EventLog, timeouts: LivenessTimeouts, now: () => number = Date.now): Promise<HostRegistry> {
    const registry = new HostRegistry(store, events, timeouts, now);
    for (const { value } of await store.list<HostRecord>(KEY_PREFIX)) {
      // Kept as stored (last heartbeat included): the sweep judges these hosts only once the
      // restart grace is over, not by heartbeats we could not receive while we were down.
      registry.hosts.set(value.facts.host_id, { ...value });
      registry.notHeardSinceStart.add(value.facts.host_id);
    }
    return registry;
  }

  /** When the restart grace ends (epoch ms). */
  get restartGraceEndsAtMs(): number {
    return this.startedAtMs + (this.timeouts.restartGraceMs ?? 0);
  }

  /**
   * True while the host, restored from the store after a restart, has not been heard from and the
   * restart grace lasts: its state is the stored one, not a verdict, and nothing should act on it
   * (no alert or repair because it looks down, no new placement because it looks up).
   */
  awaitingContact(hostId: string): boolean {
    return this.notHeardSinceStart.has(hostId) && this.now() < this.restartGraceEndsAtMs;
  }

  /** Hosts awaiting contact (see awaitingContact), sorted. */
  listAwaitingContact(): string[] {
    if (this.notHeardSinceStart.size === 0 || this.now() >= this.restartGraceEndsAtMs) return [];
    return [...this.notHeardSinceStart].sort();
  }

  /** Restored hosts not heard from since the start, grace or not (for logs at the grace's end). */
  listNotHeardSinceStart(): string[] {
    return [...this.notHeardSinceStart].sort();
  }

  /** Registers a host, or re-registers a known one (agent restart); the host is UP afterwards. */
  register(facts: HostFacts): Promise<HostRecord> {
    return this.queue.run(async () => {
      const now = this.now();
      const prev = this.hosts.get(facts.host_id);
      const record: HostRecord = {
        facts,
        state: 'HOST_STATE_UP',
        registered_at_unix_ms: prev?.registered_at_unix_ms ?? now,
        last_heartbeat_unix_ms: now,
        state_changed_at_unix_ms: prev && prev.state === 'HOST_STATE_UP' ? prev.state_changed_at_unix_ms : now,
        usage: prev?.usage ?? EMPTY_USAGE,
      };
      const { event, op } = prev
        ? this.events.prepare({
            kind: 'EVENT_KIND_HOST_REREGISTERED',
            host_id: facts.host_id,
            message: `host ${facts.host_id} registered again from ${facts.agent_endpoint}`,
            previous_state: prev.state,
            new_state: 'HOST_STATE_UP',
            attributes: { agent_endpoint: facts.agent_endpoint, agent_version: facts.agent_version },
          })
        : this.events.prepare({
            kind: 'EVENT_KIND_HOST_JOINED',
            host_id: facts.host_id,
            message: `host ${facts.host_id} joined from ${facts.agent_endpoint}`,
            new_state: 'HOST_STATE_UP',
            attributes: { agent_endpoint: facts.agent_endpoint, agent_version: facts.agent_version, failure_domain: facts.failure_domain },
          });
      await this.store.batch([{ type: 'put', key: key(facts.host_id), value: record }, op]);
      this.hosts.set(facts.host_id, record);
      this.notHeardSinceStart.delete(facts.host_id);
      this.hardRevision++;
      this.events.publish(event);
      return record;
    });
  }

  /**
   * Records a heartbeat. Unknown hosts get NOT_FOUND (the agent must register first). Only a
   * state change is written to disk: heartbeats themselves are soft state.
   */
  heartbeat(hostId: string, usage: HostUsage): Promise<HostRecord> {
    const record = this.hosts.get(hostId);
    if (!record) return Promise.reject(new NotFoundError('host', hostId));
    record.last_heartbeat_unix_ms = this.now();
    record.usage = usage;
    this.notHeardSinceStart.delete(hostId);
    if (record.state === 'HOST_STATE_UP') return Promise.resolve(record);
    return this.queue.run(async () => {
      await this.transition(record, 'HOST_STATE_UP', 'heartbeat resumed');
      return record;
    });
  }

  /** Re-evaluates liveness of every host; called periodically. Returns the hosts that changed. */
  sweep(): Promise<HostRecord[]> {
    return this.queue.run(async () => {
      const now = this.now();
      const changed: HostRecord[] = [];
      for (const record of this.hosts.values()) {
        const id = record.facts.host_id;
        if (this.notHeardSinceStart.has(id)) {
          // Restored and silent since our start: no verdict during the grace, then never better
          // than the stored state (only contact brings a host up).
          const state = restoredHostState(record.state, this.startedAtMs, now, this.timeouts);
          if (state === undefined || state === record.state) continue;
          const sinceS = ((now - this.startedAtMs) / 1000).toFixed(1);
          await this.transition(record, state, `not heard from since the coordinator started ${sinceS} s ago`);
          changed.push(record);
          continue;
        }
        const state = livenessState(record.last_heartbeat_unix_ms, now, this.timeouts);
        if (state !== record.state) {
          const silentS = ((now - record.last_heartbeat_unix_ms) / 1000).toFixed(1);
          await this.transition(record, state, state === 'HOST_STATE_UP' ? 'heartbeat resumed' : `no heartbeat for ${silentS} s`);
          changed.push(record);
        }
      }
      return changed;
    });
  }

  private async transition(record: HostRecord, state: HostState, why: string): Promise<void> {
    const previous = record.state;
    const now = this.now();
    const next: HostRecord = { ...record, state, state_changed_at_unix_ms: now };
    const { event, op } = this.events.prepare({
      kind: 'EVENT_KIND_HOST_STATE_CHANGED',
      host_id: record.facts.host_id,
      message: `host ${record.facts.host_id} ${stateWord(previous)} -> ${stateWord(state)}: ${why}`,
      previous_state: previous,
      new_state: state,
    });
    const ops: KvBatchOp[] = [{ type: 'put', key: key(record.facts.host_id), value: next }, op];
    await this.store.batch(ops);
    Object.assign(record, next);
    this.hardRevision++;
    this.events.publish(event);
  }

  remove(hostId: string): Promise<void> {
    return this.queue.run(async () => {
      const record = this.hosts.get(hostId);
      if (!record) throw new NotFoundError('host', hostId);
      const { event, op } = this.events.prepare({
        kind: 'EVENT_KIND_HOST_LEFT',
        host_id: hostId,
        message: `host ${hostId} removed`,
        previous_state: record.state,
      });
      await this.store.batch([{ type: 'del', key: key(hostId) }, op]);
      this.hosts.delete(hostId);
      this.notHeardSinceStart.delete(hostId);
      this.hardRevision++;
      this.events.publish(event);
    });
  }

  get(hostId: string): HostRecord {
    const record = this.hosts.get(hostId);
    if (!record) throw new NotFoundError('host', hostId);
    return record;
  }

  /** Hosts per liveness state, in one pass without sorting (metrics refresh on every event). */
  countByState(): Record<HostState, number> {
    const counts: Record<HostState, number> = { HOST_STATE_UP: 0, HOST_STATE_SUSPECT: 0, HOST_STATE_DOWN: 0 };
    for (const h of this.hosts.values()) counts[h.state]++;
    return counts;
  }

  list(states: readonly HostState[] = []): HostRecord[] {
    const all = [...this.hosts.values()];
    const filtered = states.length === 0 ? all : all.filter((h) => states.includes(h.state));
    return filtered.sort((a, b) => a.facts.host_id.localeCompare(b.facts.host_id));
  }
}

function stateWord(s: HostState): string {
  return s.replace('HOST_STATE_', '').toLowerCase();
}

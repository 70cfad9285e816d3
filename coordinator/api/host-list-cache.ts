// Caches ListHosts answers: polled a thousand times a second by dashboards and automation, the
// same list must not be rebuilt (and re-encoded) per call. A cached answer is dropped at once when
// a host registers, changes state or leaves, and otherwise lives at most MAX_AGE_MS, so heartbeat
// times, usage and "awaiting contact" in it are at most that old.
import type { HostRegistry } from '../core/host-registry';
import type { HostState } from '../../shared/host-types';
import { basicView, type HostView, hostToWire } from './host-messages';

export const HOST_LIST_MAX_AGE_MS = 250;

interface Entry {
  revision: number;
  builtAtMs: number;
  response: { hosts: Array<ReturnType<typeof hostToWire>> };
}

export class HostListCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly registry: HostRegistry, private readonly now: () => number = Date.now) {}

  /** The same response object while valid, so the server's serializer can reuse its bytes too. */
  get(states: HostState[], view: HostView): Entry['response'] {
    const key = `${[...states].sort().join(',')}|${view === 'HOST_VIEW_FULL' ? 'full' : 'basic'}`;
    const now = this.now();
    const hit = this.entries.get(key);
    if (hit && hit.revision === this.registry.revision && now - hit.builtAtMs < HOST_LIST_MAX_AGE_MS) return hit.response;
    const hosts = this.registry.list(states).map((h) => hostToWire(h, this.registry.awaitingContact(h.facts.host_id)));
    const response = { hosts: view === 'HOST_VIEW_FULL' ? hosts : hosts.map(basicView) };
    this.entries.set(key, { revision: this.registry.revision, builtAtMs: now, response });
    return response;
  }
}

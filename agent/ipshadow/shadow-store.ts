// Durable shadow records of an agent (KvStore, keys `ipshadow/shadow/<vm>`): configs of VMs of other
// hosts, kept inactive. The coordinator's newest version wins; DHCP seen here refreshes the lease
// fields in between without changing the version.
import type { KvStore } from '../../shared/kv-store';
import { KeyedMutex } from '../../shared/keyed-mutex';
import type { VmIpConfig } from '../../shared/vm-ip-config';

const PREFIX = 'ipshadow/shadow/';

export interface ShadowRecord {
  vm_id: string;
  source_host: string;
  config: VmIpConfig;
  version: number;
  received_at_unix_ms: number;
  sniffed_at_unix_ms: number;
  active: boolean;
}

export class ShadowStore {
  private readonly mutex = new KeyedMutex();
  private readonly cache = new Map<string, ShadowRecord>();

  private constructor(private readonly store: KvStore, private readonly nowMs: () => number) {}

  static async open(store: KvStore, nowMs: () => number = Date.now): Promise<ShadowStore> {
    const s = new ShadowStore(store, nowMs);
    for (const { value } of await store.list<ShadowRecord>(PREFIX)) s.cache.set(value.vm_id, value);
    return s;
  }

  /** Stores `config` at `version` unless a newer version is held; returns the record kept. */
  put(sourceHost: string, config: VmIpConfig, version: number): Promise<{ record: ShadowRecord; applied: boolean }> {
    return this.mutex.run(config.vm_id, async () => {
      const held = this.cache.get(config.vm_id);
      if (held && held.version > version) return { record: held, applied: false };
      const record: ShadowRecord = {
        vm_id: config.vm_id,
        source_host: sourceHost,
        config,
        version,
        received_at_unix_ms: this.nowMs(),
        sniffed_at_unix_ms: held?.sniffed_at_unix_ms ?? 0,
        active: held?.active ?? false,
      };
      await this.store.put(PREFIX + config.vm_id, record);
      this.cache.set(config.vm_id, record);
      return { record, applied: true };
    });
  }

  /** Lease fields seen on this host's wire for the shadow's MAC (same version: the coordinator's push will confirm). */
  applySniffed(mac: string, lease: Omit<VmIpConfig, 'vm_id' | 'mode'>): Promise<ShadowRecord[]> {
    const hits = [...this.cache.values()].filter((r) => r.config.mac === mac);
    return Promise.all(
      hits.map((h) =>
        this.mutex.run(h.vm_id, async () => {
          const cur = this.cache.get(h.vm_id) ?? h;
          const record: ShadowRecord = { ...cur, config: { ...lease, vm_id: cur.vm_id, mode: cur.config.mode }, sniffed_at_unix_ms: this.nowMs() };
          await this.store.put(PREFIX + cur.vm_id, record);
          this.cache.set(cur.vm_id, record);
          return record;
        }),
      ),
    );
  }

  setActive(vmId: string, active: boolean): Promise<void> {
    return this.mutex.run(vmId, async () => {
      const cur = this.cache.get(vmId);
      if (!cur || cur.active === active) return;
      const record = { ...cur, active };
      await this.store.put(PREFIX + vmId, record);
      this.cache.set(vmId, record);
    });
  }

  remove(vmId: string): Promise<boolean> {
    return this.mutex.run(vmId, async () => {
      if (!this.cache.has(vmId)) return false;
      await this.store.del(PREFIX + vmId);
      this.cache.delete(vmId);
      return true;
    });
  }

  get(vmId: string): ShadowRecord | undefined {
    return this.cache.get(vmId);
  }

  list(): ShadowRecord[] {
    return [...this.cache.values()].sort((a, b) => a.vm_id.localeCompare(b.vm_id));
  }
}

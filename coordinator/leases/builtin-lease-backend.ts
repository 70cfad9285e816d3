// LeaseBackend `builtin`: lease records in the coordinator's store (keys `ipshadow/lease/<vm>`).
import type { KvStore } from '../../shared/kv-store';
import type { VmIpConfig } from '../../shared/vm-ip-config';
import type { LeaseBackend, LeaseRecord } from './lease-backend';

const PREFIX = 'ipshadow/lease/';

export class BuiltinLeaseBackend implements LeaseBackend {
  readonly name = 'builtin';

  constructor(private readonly store: KvStore, private readonly nowMs: () => number = Date.now) {}

  async record(config: VmIpConfig, activeHost: string, shadowHosts: string[]): Promise<LeaseRecord> {
    const rec: LeaseRecord = {
      vm_id: config.vm_id,
      mac: config.mac,
      address: config.address,
      active_host: activeHost,
      shadow_hosts: [...shadowHosts].sort(),
      updated_at_unix_ms: this.nowMs(),
    };
    await this.store.put(PREFIX + config.vm_id, rec);
    return rec;
  }

  async get(config: VmIpConfig): Promise<LeaseRecord | undefined> {
    const rec = await this.store.get<LeaseRecord>(PREFIX + config.vm_id);
    return rec && rec.address === config.address ? rec : undefined;
  }

  async close(): Promise<void> {}
}

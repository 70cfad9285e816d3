// The VMs whose address this host holds active, with the config activated (KvStore, keys
// `ipshadow/active/<vm>`), so a restarted agent can still deactivate and report them.
import type { KvStore } from '../../shared/kv-store';
import type { VmIpConfig } from '../../shared/vm-ip-config';

const PREFIX = 'ipshadow/active/';

export class ActiveSet {
  private readonly cache = new Map<string, VmIpConfig>();

  private constructor(private readonly store: KvStore) {}

  static async open(store: KvStore): Promise<ActiveSet> {
    const s = new ActiveSet(store);
    for (const { value } of await store.list<VmIpConfig>(PREFIX)) s.cache.set(value.vm_id, value);
    return s;
  }

  async put(config: VmIpConfig): Promise<void> {
    await this.store.put(PREFIX + config.vm_id, config);
    this.cache.set(config.vm_id, config);
  }

  async remove(vmId: string): Promise<void> {
    await this.store.del(PREFIX + vmId);
    this.cache.delete(vmId);
  }

  get(vmId: string): VmIpConfig | undefined {
    return this.cache.get(vmId);
  }

  list(): VmIpConfig[] {
    return [...this.cache.values()];
  }
}

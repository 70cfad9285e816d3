// The coordinator's record of VMs' IP configurations: the host each VM is active on, its config and
// a version that grows with every change (the version shadows are compared against). Keys
// `ipshadow/vm/<id>`.
import { NotFoundError } from '../../shared/errors';
import type { KvStore } from '../../shared/kv-store';
import { sameConfig, type VmIpConfig } from '../../shared/vm-ip-config';

const PREFIX = 'ipshadow/vm/';

export interface VmIpRecord {
  vm_id: string;
  active_host: string;
  config: VmIpConfig;
  version: number;
  updated_at_unix_ms: number;
}

export type ReportOutcome =
  | { accepted: true; changed: boolean; record: VmIpRecord }
  | { accepted: false; reason: string };

export type VmChangeListener = (record: VmIpRecord) => void;

export class VmIpRegistry {
  private readonly records = new Map<string, VmIpRecord>();
  private readonly listeners = new Set<VmChangeListener>();

  private constructor(private readonly store: KvStore, private readonly nowMs: () => number) {}

  static async open(store: KvStore, nowMs: () => number = Date.now): Promise<VmIpRegistry> {
    const r = new VmIpRegistry(store, nowMs);
    for (const { value } of await store.list<VmIpRecord>(PREFIX)) r.records.set(value.vm_id, value);
    return r;
  }

  /**
   * A config reported by the agent of `hostId`. Taken only from the host the VM is active on (or
   * any host for a VM not seen before); a different config gets the next version.
   */
  async report(hostId: string, config: VmIpConfig): Promise<ReportOutcome> {
    const held = this.records.get(config.vm_id);
    if (held && held.active_host !== hostId) return { accepted: false, reason: `vm '${config.vm_id}' is active on '${held.active_host}', not '${hostId}'` };
    if (held && sameConfig(held.config, config)) return { accepted: true, changed: false, record: held };
    const record: VmIpRecord = { vm_id: config.vm_id, active_host: hostId, config, version: (held?.version ?? 0) + 1, updated_at_unix_ms: this.nowMs() };
    await this.save(record);
    return { accepted: true, changed: true, record };
  }

  /** Records that the VM is now active on `hostId` (after a switchover). */
  async setActiveHost(vmId: string, hostId: string): Promise<VmIpRecord> {
    const held = this.get(vmId);
    const record = { ...held, active_host: hostId, updated_at_unix_ms: this.nowMs() };
    await this.store.put(PREFIX + vmId, record);
    this.records.set(vmId, record);
    return record;
  }

  private async save(record: VmIpRecord): Promise<void> {
    await this.store.put(PREFIX + record.vm_id, record);
    this.records.set(record.vm_id, record);
    for (const l of this.listeners) {
      try {
        l(record);
      } catch {
        // A failing listener must not stop the report.
      }
    }
  }

  get(vmId: string): VmIpRecord {
    const r = this.records.get(vmId);
    if (!r) throw new NotFoundError('vm', vmId);
    return r;
  }

  find(vmId: string): VmIpRecord | undefined {
    return this.records.get(vmId);
  }

  list(): VmIpRecord[] {
    return [...this.records.values()].sort((a, b) => a.vm_id.localeCompare(b.vm_id));
  }

  /** Called after every new version. */
  onChange(listener: VmChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

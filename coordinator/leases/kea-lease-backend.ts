// LeaseBackend `kea`: the VM's lease in a real kea-dhcp4 (lease_cmds hook: lease4-get/add/update);
// Umbra's state (active host, shadow hosts) lives in the lease's user-context under "umbra".
import type { VmIpConfig } from '../../shared/vm-ip-config';
import { KEA_RESULT_EMPTY, KeaControlClient } from './kea-control-client';
import type { LeaseBackend, LeaseRecord } from './lease-backend';

/** Lifetime given to a lease Umbra creates when the DHCP server has none (the VM's own lease time is used when known). */
const DEFAULT_VALID_LIFETIME_SEC = 3600;

export interface KeaLeaseBackendOptions {
  controlSocket: string;
  /** Subnet of the leases; 0 lets Kea pick it from the address. */
  subnetId: number;
  nowMs?: () => number;
}

interface UmbraContext {
  vm_id: string;
  active_host: string;
  shadow_hosts: string[];
  updated_at_unix_ms: number;
}

export class KeaLeaseBackend implements LeaseBackend {
  readonly name = 'kea';
  private readonly client: KeaControlClient;
  private readonly nowMs: () => number;

  constructor(private readonly opts: KeaLeaseBackendOptions) {
    this.client = new KeaControlClient(opts.controlSocket);
    this.nowMs = opts.nowMs ?? Date.now;
  }

  private async lease(address: string): Promise<Record<string, unknown> | undefined> {
    const r = await this.client.command('lease4-get', { 'ip-address': address });
    return r.result === KEA_RESULT_EMPTY ? undefined : r.arguments;
  }

  async record(config: VmIpConfig, activeHost: string, shadowHosts: string[]): Promise<LeaseRecord> {
    const umbra: UmbraContext = { vm_id: config.vm_id, active_host: activeHost, shadow_hosts: [...shadowHosts].sort(), updated_at_unix_ms: this.nowMs() };
    const existing = await this.lease(config.address);
    const userContext = { ...((existing?.['user-context'] as Record<string, unknown> | undefined) ?? {}), umbra };
    const args: Record<string, unknown> = {
      'ip-address': config.address,
      'hw-address': config.mac,
      'user-context': userContext,
      ...(this.opts.subnetId > 0 ? { 'subnet-id': this.opts.subnetId } : existing?.['subnet-id'] !== undefined ? { 'subnet-id': existing['subnet-id'] } : {}),
    };
    if (existing) {
      // Keep what the server granted (lifetime, hostname); only Umbra's context changes.
      for (const k of ['valid-lft', 'hostname', 'expire', 'fqdn-fwd', 'fqdn-rev']) if (existing[k] !== undefined) args[k] = existing[k];
      await this.client.command('lease4-update', args);
    } else {
      args['valid-lft'] = config.lease_time_sec || DEFAULT_VALID_LIFETIME_SEC;
      if (config.hostname) args.hostname = config.hostname;
      await this.client.command('lease4-add', args);
    }
    return { vm_id: config.vm_id, mac: config.mac, address: config.address, active_host: activeHost, shadow_hosts: umbra.shadow_hosts, updated_at_unix_ms: umbra.updated_at_unix_ms };
  }

  async get(config: VmIpConfig): Promise<LeaseRecord | undefined> {
    const l = await this.lease(config.address);
    const umbra = (l?.['user-context'] as { umbra?: UmbraContext } | undefined)?.umbra;
    if (!l || !umbra) return undefined;
    return {
      vm_id: umbra.vm_id,
      mac: String(l['hw-address'] ?? ''),
      address: config.address,
      active_host: umbra.active_host,
      shadow_hosts: umbra.shadow_hosts ?? [],
      updated_at_unix_ms: umbra.updated_at_unix_ms,
    };
  }

  async close(): Promise<void> {}
}

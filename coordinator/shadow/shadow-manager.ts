// Keeps shadows of VMs' IP configs on destination hosts: places them on the top-N ranked hosts
// passing the threshold (every refresh), retires those that fall out, takes manual placements,
// and pushes every new config version to every shadow. Keys `ipshadow/shadow/<vm>/<host>`.
// A shadow is only retired on a verdict about its host: a host of unknown liveness (SUSPECT, or
// awaiting contact after a coordinator restart: HostRegistry's restart grace) keeps its shadows,
// so a restarted coordinator leaves healthy shadows alone while its agents reconnect.
import type { Logger } from 'pino';
import { FailedPreconditionError, NotFoundError, errorMessage } from '../../shared/errors';
import type { HostRecord } from '../../shared/host-types';
import type { KvStore } from '../../shared/kv-store';
import { KeyedMutex } from '../../shared/keyed-mutex';
import type { VmIpConfig } from '../../shared/vm-ip-config';
import type { EventLog } from '../core/event-log';
import type { Ranker } from '../rank/types';
import { hostViewOf, vmViewOf } from './host-views';
import { type PlacementPolicy, planShadows } from './shadow-placement';
import type { VmIpRecord, VmIpRegistry } from './vm-ip-registry';

const PREFIX = 'ipshadow/shadow/';
const key = (vmId: string, hostId: string) => `${PREFIX}${vmId}/${hostId}`;

export type ShadowState = 'staging' | 'warm';

export interface ShadowEntry {
  vm_id: string;
  host_id: string;
  state: ShadowState;
  /** Version the host confirmed holding (0: none yet). */
  version: number;
  manual: boolean;
  score: number;
  placed_at_unix_ms: number;
  confirmed_at_unix_ms: number;
  last_error: string;
}

/** The agents' side of shadows (IpShadowService on each host in production). */
export interface ShadowAgentPort {
  /** Stores the shadow on `hostId`; resolves with the version the host holds afterwards. */
  putShadow(hostId: string, sourceHost: string, config: VmIpConfig, version: number): Promise<number>;
  removeShadow(hostId: string, vmId: string): Promise<void>;
}

/** Told which hosts hold shadows of a VM (the lease backend records them). */
export type ShadowSetListener = (vm: VmIpRecord, hostIds: string[]) => Promise<void>;

export interface ShadowManagerDeps {
  store: KvStore;
  vms: VmIpRegistry;
  /**
   * `awaitingContact`: the host is known from the store but not heard from since a coordinator
   * restart and the registry's restart grace lasts (HostRegistry.awaitingContact): no verdict yet.
   */
  hosts: { list(): HostRecord[]; awaitingContact?(hostId: string): boolean };
  ranker: Ranker;
  agents: ShadowAgentPort;
  events: Pick<EventLog, 'append'>;
  /** Initial placement policy; setPolicy() changes it. */
  policy: PlacementPolicy;
  /** Rank with the hosts' reported load (default true). */
  useHostLoad?: boolean;
  logger: Logger;
  onShadowSet?: ShadowSetListener;
  nowMs?: () => number;
}

export interface RefreshOutcome {
  placed: number;
  retired: number;
  pushed: number;
  /** Shadows kept without a verdict because their host's liveness is not known yet. */
  held: number;
}

/** What a placement round may conclude about a host. */
export type HostLiveness = 'known' | 'unknown' | 'gone';

export class ShadowManager {
  private readonly entries = new Map<string, ShadowEntry>();
  private readonly mutex = new KeyedMutex();
  private readonly nowMs: () => number;
  private readonly unsubscribe: () => void;
  /** Last logged reason a VM got fewer shadows than wanted (logged on change only). */
  private readonly lastShortfall = new Map<string, string>();
  private policyValue: PlacementPolicy;

  private constructor(private readonly d: ShadowManagerDeps) {
    this.nowMs = d.nowMs ?? Date.now;
    this.policyValue = { ...d.policy };
    this.unsubscribe = d.vms.onChange((vm) => {
      this.pushAll(vm.vm_id).catch((err) => d.logger.warn({ vmId: vm.vm_id, err: errorMessage(err) }, 'pushing a new version failed'));
    });
  }

  static async open(d: ShadowManagerDeps): Promise<ShadowManager> {
    const m = new ShadowManager(d);
    for (const { value } of await d.store.list<ShadowEntry>(PREFIX)) m.entries.set(key(value.vm_id, value.host_id), value);
    return m;
  }

  get policy(): PlacementPolicy {
    return this.policyValue;
  }

  /** A new N / threshold: the next refresh places and retires by it. */
  setPolicy(p: PlacementPolicy): void {
    this.policyValue = { shadowingThreshold: p.shadowingThreshold, maxShadowedVms: p.maxShadowedVms };
    this.lastShortfall.clear();
  }

  list(vmId?: string): ShadowEntry[] {
    return [...this.entries.values()]
      .filter((e) => !vmId || e.vm_id === vmId)
      .sort((a, b) => a.vm_id.localeCompare(b.vm_id) || a.host_id.localeCompare(b.host_id));
  }

  /** Why `hostId` cannot take over `vmId` now, or undefined when it holds the current version. */
  notCurrentReason(vmId: string, hostId: string): string | undefined {
    const vm = this.d.vms.get(vmId);
    const e = this.entries.get(key(vmId, hostId));
    if (!e) return `host '${hostId}' holds no shadow of vm '${vmId}'`;
    if (e.version < vm.version) return `the shadow on '${hostId}' holds version ${e.version}, the current version is ${vm.version}${e.last_error ? ` (last push failed: ${e.last_error})` : ''}`;
    return undefined;
  }

  /** Places a shadow by hand; it stays until removed by hand. */
  async place(vmId: string, hostId: string): Promise<ShadowEntry> {
    const vm = this.d.vms.get(vmId);
    if (!this.d.hosts.list().some((h) => h.facts.host_id === hostId)) throw new NotFoundError('host', hostId);
    if (vm.active_host === hostId) throw new FailedPreconditionError(`vm '${vmId}' is active on '${hostId}'; a shadow belongs on another host`);
    return this.mutex.run(vmId, async () => {
      const existing = this.entries.get(key(vmId, hostId));
      const entry = await this.create(vm, hostId, true, existing?.score ?? 0, existing);
      await this.notifySet(vm);
      return entry;
    });
  }

  async remove(vmId: string, hostId: string, why = 'removed by an operator'): Promise<void> {
    await this.mutex.run(vmId, async () => {
      if (!this.entries.has(key(vmId, hostId))) throw new NotFoundError('shadow', `${vmId} on ${hostId}`);
      await this.retire(vmId, hostId, why);
      const vm = this.d.vms.find(vmId);
      if (vm) await this.notifySet(vm);
    });
  }

  /** The VM now runs on `newHost`: its shadow there became the active copy. */
  async promoted(vmId: string, newHost: string): Promise<void> {
    await this.mutex.run(vmId, async () => {
      const k = key(vmId, newHost);
      if (!this.entries.has(k)) return;
      await this.d.store.del(k);
      this.entries.delete(k);
    });
  }

  /**
   * `known`: UP with a verdict: ranked as usual. `unknown`: SUSPECT, or awaiting contact after a
   * restart (its stored state is no verdict): its shadows are kept, it gets no new one. `gone`:
   * DOWN or no longer registered.
   */
  hostLiveness(h: HostRecord | undefined): HostLiveness {
    if (!h) return 'gone';
    if (this.d.hosts.awaitingContact?.(h.facts.host_id) === true) return 'unknown';
    if (h.state === 'HOST_STATE_SUSPECT') return 'unknown';
    return h.state === 'HOST_STATE_UP' ? 'known' : 'gone';
  }

  /** One placement round over every VM. */
  async refresh(): Promise<RefreshOutcome> {
    const out: RefreshOutcome = { placed: 0, retired: 0, pushed: 0, held: 0 };
    const hosts = this.d.hosts.list();
    const liveness = new Map(hosts.map((h) => [h.facts.host_id, this.hostLiveness(h)]));
    // Only hosts known to be alive are ranked: no new shadow goes to a host we have not heard from.
    const views = hosts.map((h) => {
      const v = hostViewOf(h, this.d.useHostLoad ?? true);
      return liveness.get(v.id) === 'known' ? v : { ...v, up: false };
    });
    for (const vm of this.d.vms.list()) {
      await this.mutex.run(vm.vm_id, async () => {
        const source = hosts.find((h) => h.facts.host_id === vm.active_host);
        // An entry where the VM is active (a switchover committed and promoted() has not run yet,
        // or the coordinator stopped in between) is the running copy now: dropped like promoted(),
        // not retired with a RemoveShadow to the host the VM runs on.
        const onActive = key(vm.vm_id, vm.active_host);
        if (this.entries.has(onActive)) {
          await this.d.store.del(onActive);
          this.entries.delete(onActive);
        }
        const existing = this.list(vm.vm_id);
        // The hosts already holding a shadow rank as warm (a forecast-aware ranker lifts them): a
        // shadow moves only for a clearly better host, since the VM's memory image follows it and
        // a move costs a full copy of its RAM.
        const warm = existing.map((e) => e.host_id);
        const result = this.d.ranker.rank(vmViewOf(vm.vm_id, source, vm.active_host), views, { warmShadowHosts: () => warm });
        const policy = this.policyValue;
        // A shadow on a host of unknown liveness stays until there is a verdict on that host.
        const held = new Set(existing.filter((e) => liveness.get(e.host_id) === 'unknown').map((e) => e.host_id));
        const plan = planShadows(result.ranked, existing.map((e) => ({ hostId: e.host_id, manual: e.manual })), policy, held);
        out.held += plan.held.length;
        const unexplained = `${result.ranked.length}:${JSON.stringify(result.rejectedCounts)}`;
        if (plan.keep.length + plan.place.length < policy.maxShadowedVms && this.lastShortfall.get(vm.vm_id) !== unexplained) {
          this.lastShortfall.set(vm.vm_id, unexplained);
          this.d.logger.info({ vmId: vm.vm_id, eligible: result.eligible, rejected: result.rejectedCounts, threshold: policy.shadowingThreshold }, 'fewer shadow destinations than max_shadowed_vms');
        }
        for (const p of plan.place) {
          await this.create(vm, p.hostId, false, p.score, undefined);
          out.placed++;
        }
        for (const hostId of plan.retire) {
          await this.retire(vm.vm_id, hostId, 'fell out of the ranking');
          out.retired++;
        }
        // Shadows that missed a version (host was away) catch up here, once their host is back.
        for (const e of this.list(vm.vm_id)) {
          if (e.version < vm.version && plan.keep.includes(e.host_id) && !plan.held.includes(e.host_id)) {
            await this.push(vm, e);
            out.pushed++;
          }
        }
        if (plan.place.length > 0 || plan.retire.length > 0) await this.notifySet(vm);
      });
    }
    return out;
  }

  /** Sends the VM's current version to every shadow of it. */
  async pushAll(vmId: string): Promise<void> {
    await this.mutex.run(vmId, async () => {
      const vm = this.d.vms.get(vmId);
      await Promise.all(this.list(vmId).map((e) => this.push(vm, e)));
    });
  }

  close(): void {
    this.unsubscribe();
  }

  private async create(vm: VmIpRecord, hostId: string, manual: boolean, score: number, existing: ShadowEntry | undefined): Promise<ShadowEntry> {
    const entry: ShadowEntry = existing
      ? { ...existing, manual: existing.manual || manual }
      : { vm_id: vm.vm_id, host_id: hostId, state: 'staging', version: 0, manual, score, placed_at_unix_ms: this.nowMs(), confirmed_at_unix_ms: 0, last_error: '' };
    await this.save(entry);
    if (!existing) {
      await this.d.events.append({
        kind: 'EVENT_KIND_SHADOW_PLACED',
        host_id: hostId,
        vm_id: vm.vm_id,
        message: `shadow of ${vm.vm_id} (${vm.config.address}) placed on ${hostId}${manual ? ' by an operator' : ` (score ${score.toFixed(3)})`}`,
        attributes: { manual: String(manual), score: score.toFixed(4), source_host: vm.active_host },
      });
    }
    return this.push(vm, entry);
  }

  private async push(vm: VmIpRecord, entry: ShadowEntry): Promise<ShadowEntry> {
    let next: ShadowEntry;
    try {
      const held = await this.d.agents.putShadow(entry.host_id, vm.active_host, vm.config, vm.version);
      next = { ...entry, version: held, state: held >= vm.version ? 'warm' : 'staging', confirmed_at_unix_ms: this.nowMs(), last_error: '' };
    } catch (err) {
      next = { ...entry, state: entry.version >= vm.version ? entry.state : 'staging', last_error: errorMessage(err) };
      this.d.logger.warn({ vmId: vm.vm_id, hostId: entry.host_id, err: next.last_error }, 'shadow push failed');
    }
    // The entry may have been retired while the push ran.
    if (this.entries.has(key(entry.vm_id, entry.host_id))) await this.save(next);
    return next;
  }

  private async retire(vmId: string, hostId: string, why: string): Promise<void> {
    const k = key(vmId, hostId);
    try {
      await this.d.agents.removeShadow(hostId, vmId);
    } catch (err) {
      // The host may be gone; its shadow is inert without activation, which needs a newer token.
      this.d.logger.warn({ vmId, hostId, err: errorMessage(err) }, 'removing a shadow on its host failed');
    }
    await this.d.store.del(k);
    this.entries.delete(k);
    await this.d.events.append({ kind: 'EVENT_KIND_SHADOW_RETIRED', host_id: hostId, vm_id: vmId, message: `shadow of ${vmId} on ${hostId} retired: ${why}`, attributes: { why } });
  }

  private async save(e: ShadowEntry): Promise<void> {
    await this.d.store.put(key(e.vm_id, e.host_id), e);
    this.entries.set(key(e.vm_id, e.host_id), e);
  }

  private async notifySet(vm: VmIpRecord): Promise<void> {
    if (!this.d.onShadowSet) return;
    try {
      await this.d.onShadowSet(vm, this.list(vm.vm_id).map((e) => e.host_id));
    } catch (err) {
      this.d.logger.warn({ vmId: vm.vm_id, err: errorMessage(err) }, 'recording shadow hosts in the lease backend failed');
    }
  }
}

// Activates and deactivates a VM's IP configuration in one of three network modes, idempotently,
// over the kernel-table ports, with an announcement burst on activation and timings per step.
import { InvalidArgumentError } from '../../shared/errors';
import type { FencingAdmission, FencingGuard } from './fencing-guard';
import type { IpActivationSpec } from './ip-activation-spec';
import { KeyedMutex } from '../../shared/keyed-mutex';
import type { AnnouncementBurst, Announcer, LinkDetails, NetTables } from './ports';

/** keepalived sends 5 per burst; 3 spaced by 20 ms reach every neighbour without flooding. */
export const DEFAULT_ANNOUNCE_COUNT = 3;
export const DEFAULT_ANNOUNCE_INTERVAL_MS = 20;
/** How long an interface resolved by admit() is used by activations without a new lookup. */
export const ADMITTED_LINK_TTL_MS = 60_000;

export interface IpApplierOptions {
  /** Frames per announcement burst; 0 disables announcements. */
  announceCount?: number;
  /** Spacing between frames of a burst. */
  announceIntervalMs?: number;
  /** Fencing: when set, every activate/deactivate must carry a token the guard accepts. */
  fencing?: FencingGuard;
  /** Monotonic milliseconds, for step timings (default performance.now). */
  nowMs?: () => number;
}

export interface StepTiming {
  /** e.g. 'route', 'proxy-neighbor', 'fdb', 'neighbor', 'address', 'announce', 'fencing'. */
  step: string;
  durationMs: number;
  /** False when the step found the state already as wanted. */
  changed: boolean;
}

export interface ApplyOptions {
  /** The switchover's fencing token (required when the applier has a FencingGuard). */
  fencingToken?: number;
}

export interface ApplyResult {
  vmId: string;
  action: 'activate' | 'deactivate';
  /** True when any kernel state changed (false: it already was as wanted). */
  changed: boolean;
  steps: StepTiming[];
  totalMs: number;
  fencing?: FencingAdmission;
  /** Resolves with the frames sent once the announcement burst is over (activate only). */
  announcement?: Promise<number>;
}

export class IpApplier {
  private readonly count: number;
  private readonly intervalMs: number;
  private readonly nowMs: () => number;
  private readonly mutex = new KeyedMutex();
  private readonly bursts = new Map<string, AnnouncementBurst>();
  /** Interfaces resolved by admit(), by name: an activation right after needs no link lookup. */
  private readonly admittedLinks = new Map<string, { link: LinkDetails; untilMs: number }>();

  constructor(
    private readonly tables: NetTables,
    private readonly announcer: Announcer,
    private readonly options: IpApplierOptions = {},
  ) {
    this.count = options.announceCount ?? DEFAULT_ANNOUNCE_COUNT;
    this.intervalMs = options.announceIntervalMs ?? DEFAULT_ANNOUNCE_INTERVAL_MS;
    if (!Number.isInteger(this.count) || this.count < 0) throw new InvalidArgumentError('announceCount', 'must be an integer >= 0');
    if (!(this.intervalMs >= 0)) throw new InvalidArgumentError('announceIntervalMs', 'must be >= 0');
    this.nowMs = options.nowMs ?? (() => performance.now());
  }

  /** Makes `spec.address` reachable at this host and announces it. Safe to repeat. */
  activate(spec: IpActivationSpec, options: ApplyOptions = {}): Promise<ApplyResult> {
    return this.mutex.run(spec.vmId, () => this.run(spec, 'activate', options));
  }

  /** Removes what activate() added for `spec`; absent state is success. Cancels a running burst. */
  deactivate(spec: IpActivationSpec, options: ApplyOptions = {}): Promise<ApplyResult> {
    return this.mutex.run(spec.vmId, () => this.run(spec, 'deactivate', options));
  }

  /**
   * Readies this host for a later activate(spec) (e.g. when a shadow becomes ready): opens the
   * announcer's handle on the interface, which otherwise costs tens of ms on the first burst.
   */
  prepare(spec: IpActivationSpec): void {
    if (this.count > 0) this.announcer.prepare(spec.interface);
  }

  /**
   * The first half of a switchover step, done before the address moves: admits `fencingToken`
   * for `spec.vmId` durably (a stale token is refused as activate() would refuse it) and opens the
   * announcer's handle and resolves the interface (refused here when it does not exist), so the
   * activate()/deactivate() with that token that follows writes nothing to disk and, within
   * ADMITTED_LINK_TTL_MS, looks nothing up. Changes no kernel state. Without a FencingGuard the
   * token is not needed.
   */
  admit(spec: IpActivationSpec, options: ApplyOptions = {}): Promise<{ fencing?: FencingAdmission; totalMs: number }> {
    return this.mutex.run(spec.vmId, async () => {
      const started = this.nowMs();
      let fencing: FencingAdmission | undefined;
      if (this.options.fencing) {
        if (options.fencingToken === undefined) throw new InvalidArgumentError('fencing_token', 'is required to prepare an IP switch');
        fencing = await this.options.fencing.admit(spec.vmId, options.fencingToken);
      }
      this.prepare(spec);
      // A host without the interface could not activate: refused here, before anything moves.
      const link = await this.tables.links.resolve(spec.interface);
      this.admittedLinks.set(spec.interface, { link, untilMs: this.nowMs() + ADMITTED_LINK_TTL_MS });
      return { ...(fencing ? { fencing } : {}), totalMs: this.nowMs() - started };
    });
  }

  /** Stops running bursts and closes the announcer. The tables belong to the caller. */
  async close(): Promise<void> {
    for (const b of this.bursts.values()) b.cancel();
    this.bursts.clear();
    await this.announcer.close();
  }

  private async run(spec: IpActivationSpec, action: 'activate' | 'deactivate', options: ApplyOptions): Promise<ApplyResult> {
    const started = this.nowMs();
    const steps: StepTiming[] = [];
    const step = async (name: string, work: () => Promise<boolean>): Promise<void> => {
      const t0 = this.nowMs();
      const changed = await work();
      steps.push({ step: name, durationMs: this.nowMs() - t0, changed });
    };
    let fencing: FencingAdmission | undefined;
    if (this.options.fencing) {
      if (options.fencingToken === undefined) throw new InvalidArgumentError('fencing_token', `is required to ${action} an IP`);
      const guard = this.options.fencing;
      const token = options.fencingToken;
      await step('fencing', async () => {
        fencing = await guard.admit(spec.vmId, token);
        return !fencing.reapplied;
      });
    }
    let announcement: Promise<number> | undefined;
    if (action === 'activate') {
      // The interface as admit() resolved it, or its MAC (routed, address) looked up while the state
      // is applied: netlink round trips fewer between the kernel change and the first frame.
      const admitted = this.admittedLink(spec.interface);
      const mac = this.count > 0 && spec.mode !== 'bridged' ? (admitted ? Promise.resolve(admitted.mac) : this.tables.links.resolve(spec.interface).then((l) => l.mac)) : undefined;
      mac?.catch(() => undefined);
      try {
        await this.applyState(spec, step, admitted);
        announcement = (await this.announce(spec, step, mac))?.finished;
      } catch (err) {
        // The interface may have changed since admit(): the next attempt looks it up again.
        this.admittedLinks.delete(spec.interface);
        throw err;
      }
    } else {
      this.bursts.get(spec.vmId)?.cancel();
      this.bursts.delete(spec.vmId);
      await this.removeState(spec, step);
    }
    return {
      vmId: spec.vmId,
      action,
      changed: steps.some((s) => s.changed && s.step !== 'fencing' && s.step !== 'announce'),
      steps,
      totalMs: this.nowMs() - started,
      ...(fencing ? { fencing } : {}),
      ...(announcement ? { announcement } : {}),
    };
  }

  private admittedLink(interfaceName: string): LinkDetails | undefined {
    const a = this.admittedLinks.get(interfaceName);
    if (a && a.untilMs >= this.nowMs()) return a.link;
    this.admittedLinks.delete(interfaceName);
    return undefined;
  }

  private async applyState(spec: IpActivationSpec, step: StepFn, link?: LinkDetails): Promise<void> {
    const t = this.tables;
    switch (spec.mode) {
      case 'routed': {
        const tap = requireField(spec, 'tap');
        await step('route', () => t.routes.ensureHostRoute({ destination: spec.address, device: tap }));
        await step('proxy-neighbor', () => t.neighbors.ensureProxy({ interface: spec.interface, address: spec.address }));
        return;
      }
      case 'bridged': {
        const tap = requireField(spec, 'tap');
        const mac = requireField(spec, 'mac');
        await step('fdb', () => t.fdb.ensure({ port: tap, mac, ...(spec.vlan !== undefined ? { vlan: spec.vlan } : {}) }));
        await step('neighbor', () => t.neighbors.ensurePermanent({ interface: spec.interface, address: spec.address, mac }));
        return;
      }
      case 'address':
        await step('address', () => t.addresses.ensure({ interface: spec.interface, address: spec.address, prefixLength: spec.prefixLength }, link));
        return;
    }
  }

  private async removeState(spec: IpActivationSpec, step: StepFn): Promise<void> {
    const t = this.tables;
    switch (spec.mode) {
      case 'routed': {
        const tap = requireField(spec, 'tap');
        // Stop answering ARP first, so no neighbour learns this host again while the route goes.
        await step('proxy-neighbor', () => t.neighbors.removeProxy({ interface: spec.interface, address: spec.address }));
        await step('route', () => t.routes.removeHostRoute({ destination: spec.address, device: tap }));
        return;
      }
      case 'bridged': {
        const tap = requireField(spec, 'tap');
        const mac = requireField(spec, 'mac');
        await step('neighbor', () => t.neighbors.removePermanent({ interface: spec.interface, address: spec.address }));
        await step('fdb', () => t.fdb.remove({ port: tap, mac, ...(spec.vlan !== undefined ? { vlan: spec.vlan } : {}) }));
        return;
      }
      case 'address': {
        const address = { interface: spec.interface, address: spec.address, prefixLength: spec.prefixLength };
        // Through the interface admit() resolved: no lookup between the switch's start and the
        // address leaving (the destination takes it only then). Nothing found that way may be an
        // interface replaced since, so the removal is tried again with a fresh lookup.
        const admitted = this.admittedLink(spec.interface);
        await step('address', async () => (await t.addresses.remove(address, admitted)) || (admitted !== undefined && (await t.addresses.remove(address))));
        return;
      }
    }
  }

  /** Starts the burst and waits only for its first frame; the rest continue in the background. */
  private async announce(spec: IpActivationSpec, step: StepFn, interfaceMac?: Promise<string | undefined>): Promise<{ finished: Promise<number> } | undefined> {
    if (this.count === 0) return undefined;
    let burst: AnnouncementBurst | undefined;
    await step('announce', async () => {
      // Bridged: neighbours must learn the VM's own MAC; otherwise this host answers for the address.
      const mac = spec.mode === 'bridged' ? requireField(spec, 'mac') : await (interfaceMac ?? this.tables.links.resolve(spec.interface).then((l) => l.mac));
      if (!mac) throw new InvalidArgumentError('interface', `${spec.interface} has no MAC address to announce`);
      this.bursts.get(spec.vmId)?.cancel();
      this.bursts.delete(spec.vmId);
      burst = this.announcer.announce({ interface: spec.interface, address: spec.address, mac, count: this.count, intervalMs: this.intervalMs });
      try {
        await burst.firstSent;
      } catch (err) {
        burst.cancel();
        throw err;
      }
      this.bursts.set(spec.vmId, burst);
      return true;
    });
    const b = burst!;
    // Wrapped: awaiting a promise of a promise would wait for the whole burst.
    return {
      finished: b.finished.finally(() => {
        if (this.bursts.get(spec.vmId) === b) this.bursts.delete(spec.vmId);
      }),
    };
  }
}

type StepFn = (name: string, work: () => Promise<boolean>) => Promise<void>;

function requireField<K extends 'tap' | 'mac'>(spec: IpActivationSpec, key: K): string {
  const v = spec[key];
  if (v === undefined) throw new InvalidArgumentError(key, `is required in ${spec.mode} mode`);
  return v;
}

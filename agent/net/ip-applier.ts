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
/** How long interfaces resolved by admit() are used by activations and removals without a new lookup. */
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
  /** Interfaces (and taps) resolved by admit(), by name: a switch right after needs no link lookup. */
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
   * for `spec.vmId` durably (a stale token is refused as activate() would refuse it), resolves the
   * interface (refused here when it does not exist) and the VM's tap, and readies the announcement
   * (handle open, frame built), and in address mode runs the add's and the delete's request paths
   * once with requests the kernel refuses, so the activate()/deactivate() with that token that follows
   * writes nothing to disk, runs warm and, within ADMITTED_LINK_TTL_MS, looks nothing up. Changes
   * no kernel state. Without a FencingGuard the token is not needed.
   */
  admit(spec: IpActivationSpec, options: ApplyOptions = {}): Promise<{ fencing?: FencingAdmission; totalMs: number }> {
    return this.mutex.run(spec.vmId, async () => {
      const started = this.nowMs();
      let fencing: FencingAdmission | undefined;
      if (this.options.fencing) {
        if (options.fencingToken === undefined) throw new InvalidArgumentError('fencing_token', 'is required to prepare an IP switch');
        fencing = await this.options.fencing.admit(spec.vmId, options.fencingToken);
      }
      // A host without the interface could not activate: refused here, before anything moves.
      const link = await this.tables.links.resolve(spec.interface);
      this.admittedLinks.set(spec.interface, { link, untilMs: this.nowMs() + ADMITTED_LINK_TTL_MS });
      // The announcement's frame is built now: bridged mode announces the VM's MAC, the others this host's.
      const mac = spec.mode === 'bridged' ? spec.mac : link.mac;
      if (this.count > 0) this.announcer.prepare(spec.interface, mac ? { address: spec.address, mac } : undefined);
      // The switch's address change runs warm: a process's first add or delete is slower by about
      // 0.5-1 ms. Both, since admit() is the same on the source and the destination.
      if (spec.mode === 'address') {
        const address = { interface: spec.interface, address: spec.address, prefixLength: spec.prefixLength };
        await this.tables.addresses.rehearseEnsure(address, link);
        await this.tables.addresses.rehearseRemove(address, link);
      }
      // The VM's tap (routed, bridged) too when it is there: a source whose guest is gone has none,
      // and its removal is then simply nothing to do, as before.
      const tap = spec.mode === 'address' || spec.tap === undefined ? undefined : await this.tables.links.find(spec.tap);
      if (tap) this.admittedLinks.set(tap.name, { link: tap, untilMs: this.nowMs() + ADMITTED_LINK_TTL_MS });
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
        await this.applyState(spec, step);
        announcement = (await this.announce(spec, step, mac))?.finished;
      } catch (err) {
        // The interfaces may have changed since admit(): the next attempt looks them up again.
        this.admittedLinks.delete(spec.interface);
        if (spec.tap !== undefined) this.admittedLinks.delete(spec.tap);
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

  private async applyState(spec: IpActivationSpec, step: StepFn): Promise<void> {
    const t = this.tables;
    const link = (name: string) => this.admittedLink(name);
    switch (spec.mode) {
      case 'routed': {
        const tap = requireField(spec, 'tap');
        await step('route', () => t.routes.ensureHostRoute({ destination: spec.address, device: tap }, link(tap)));
        await step('proxy-neighbor', () => t.neighbors.ensureProxy({ interface: spec.interface, address: spec.address }, link(spec.interface)));
        return;
      }
      case 'bridged': {
        const tap = requireField(spec, 'tap');
        const mac = requireField(spec, 'mac');
        await step('fdb', () => t.fdb.ensure({ port: tap, mac, ...(spec.vlan !== undefined ? { vlan: spec.vlan } : {}) }, link(tap)));
        await step('neighbor', () => t.neighbors.ensurePermanent({ interface: spec.interface, address: spec.address, mac }, link(spec.interface)));
        return;
      }
      case 'address':
        await step('address', () => t.addresses.ensure({ interface: spec.interface, address: spec.address, prefixLength: spec.prefixLength }, link(spec.interface)));
        return;
    }
  }

  /**
   * Each removal goes through the interface admit() resolved: no lookup between the switch's
   * start and the address leaving (the destination takes it only then). Nothing found that way
   * may be an interface replaced since, so that removal is tried again with a fresh lookup.
   */
  private async removeState(spec: IpActivationSpec, step: StepFn): Promise<void> {
    const t = this.tables;
    const remove = (name: string, work: (link?: LinkDetails) => Promise<boolean>) => async () => {
      const admitted = this.admittedLink(name);
      return (await work(admitted)) || (admitted !== undefined && (await work(undefined)));
    };
    switch (spec.mode) {
      case 'routed': {
        const tap = requireField(spec, 'tap');
        // Stop answering ARP first, so no neighbour learns this host again while the route goes.
        await step('proxy-neighbor', remove(spec.interface, (l) => t.neighbors.removeProxy({ interface: spec.interface, address: spec.address }, l)));
        await step('route', remove(tap, (l) => t.routes.removeHostRoute({ destination: spec.address, device: tap }, l)));
        return;
      }
      case 'bridged': {
        const tap = requireField(spec, 'tap');
        const mac = requireField(spec, 'mac');
        await step('neighbor', remove(spec.interface, (l) => t.neighbors.removePermanent({ interface: spec.interface, address: spec.address }, l)));
        await step('fdb', remove(tap, (l) => t.fdb.remove({ port: tap, mac, ...(spec.vlan !== undefined ? { vlan: spec.vlan } : {}) }, l)));
        return;
      }
      case 'address':
        await step('address', remove(spec.interface, (l) => t.addresses.remove({ interface: spec.interface, address: spec.address, prefixLength: spec.prefixLength }, l)));
        return;
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

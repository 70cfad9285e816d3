// Which switchover a migration takes and where it goes: QEMU VMs take the full VM switchover
// (installed by the `switchover` module), other VMs the IP-only one; an empty destination means
// the best-ranked host holding a ready shadow. One switchover per VM at a time.
import { FailedPreconditionError } from '../../shared/errors';
import type { IpSwitchover } from '../migrate/ip-switchover';
import type { SwitchoverEvent } from '../migrate/switchover-event';
import type { RankResult } from '../rank/types';
import { type ChosenDestination, chooseBestDestination } from './best-destination';

/** A step starts (ok undefined) or ends (ok, durationMs, error when it failed). */
export interface MigrationProgress {
  step: string;
  hostId: string;
  ok?: boolean;
  durationMs?: number;
  error?: string;
}

/** The full VM switchover, as the `switchover` coordinator module provides it. */
export interface VmSwitchoverRoute {
  /** True when `vmId` runs as a QEMU VM an agent drives. */
  handles(vmId: string): Promise<boolean>;
  trigger(vmId: string, destination: string, progress?: (p: MigrationProgress) => void): Promise<SwitchoverEvent>;
  /** Why `destination` cannot take the VM over now, or undefined. */
  notReadyReason(vmId: string, destination: string): Promise<string | undefined>;
  list(vmId: string | undefined, limit: number): Promise<SwitchoverEvent[]>;
}

/** Ranks destinations for "best" (installed by the `switchover` module). */
export interface DestinationRanker {
  /** Every registered host. */
  hostIds(): string[];
  /** Destinations for `vmId` leaving `sourceHost`, rejected hosts explained. */
  rank(vmId: string, sourceHost: string): RankResult;
}

export interface MigrationRunOptions {
  /** Step updates (full VM switchover only; the IP-only one reports its steps in the result). */
  progress?: (p: MigrationProgress) => void;
  /** A named destination whose shadow is not ready gives way to the best one (automatic mode). */
  orBest?: boolean;
  /** Called once the destination is chosen, before the switchover starts. */
  onDestination?: (d: ChosenDestination, sourceHost: string) => void;
}

export interface MigrationRun {
  destination: ChosenDestination;
  event: SwitchoverEvent;
}

export class MigrationRoutes {
  private vmRoute?: VmSwitchoverRoute;
  private ranker?: DestinationRanker;
  private readonly running = new Set<string>();

  constructor(readonly ip: IpSwitchover) {}

  installVmRoute(route: VmSwitchoverRoute): void {
    this.vmRoute = route;
  }

  installRanker(ranker: DestinationRanker): void {
    this.ranker = ranker;
  }

  /** Whether the coordinator knows where `vmId`'s address is active (a VM it can switch over). */
  knows(vmId: string): boolean {
    return this.ip.activeHostOf(vmId) !== undefined;
  }

  /** True while a switchover of `vmId` started through these routes runs. */
  isRunning(vmId: string): boolean {
    return this.running.has(vmId);
  }

  async forVm(vmId: string): Promise<{ trigger(vmId: string, destination: string): Promise<SwitchoverEvent> }> {
    return (await this.vmRouteFor(vmId)) ?? this.ip;
  }

  private async vmRouteFor(vmId: string): Promise<VmSwitchoverRoute | undefined> {
    return this.vmRoute && (await this.vmRoute.handles(vmId)) ? this.vmRoute : undefined;
  }

  /**
   * Where `vmId` goes: `requested`, or (empty) the best-ranked host holding a ready shadow.
   * FailedPreconditionError with the reasons when "best" finds none; NotFoundError for an unknown VM.
   */
  async chooseDestination(vmId: string, requested: string, opts: { orBest?: boolean } = {}): Promise<{ destination: ChosenDestination; sourceHost: string }> {
    const sourceHost = this.ip.activeHost(vmId);
    if (requested && !opts.orBest) return { destination: { hostId: requested, chosenByRank: false, score: 0, reasons: [] }, sourceHost };
    const vmRoute = await this.vmRouteFor(vmId);
    const notReadyReason = (h: string) => (vmRoute ? vmRoute.notReadyReason(vmId, h) : Promise.resolve(this.ip.notCurrentReason(vmId, h)));
    let setAside = '';
    if (requested) {
      const why = requested === sourceHost ? `vm '${vmId}' is already active there` : await notReadyReason(requested);
      if (why === undefined) return { destination: { hostId: requested, chosenByRank: false, score: 0, reasons: [] }, sourceHost };
      setAside = `${requested} set aside: ${why}`;
    }
    const ranker = this.ranker;
    if (!ranker) throw new FailedPreconditionError(`no destination ranker runs here (the 'switchover' module): name the destination of vm '${vmId}'`);
    const best = await chooseBestDestination({ vmId, sourceHost, hostIds: ranker.hostIds(), notReadyReason, rank: () => ranker.rank(vmId, sourceHost) });
    return { destination: setAside ? { ...best, reasons: [setAside, ...best.reasons], setAside } : best, sourceHost };
  }

  /** Chooses the destination and runs the switchover the VM takes; refuses a second one of the same VM. */
  async run(vmId: string, requested: string, opts: MigrationRunOptions = {}): Promise<MigrationRun> {
    if (this.running.has(vmId)) throw new FailedPreconditionError(`a switchover of vm '${vmId}' is already running`);
    this.running.add(vmId);
    try {
      const { destination, sourceHost } = await this.chooseDestination(vmId, requested, opts);
      opts.onDestination?.(destination, sourceHost);
      const vmRoute = await this.vmRouteFor(vmId);
      const event = vmRoute ? await vmRoute.trigger(vmId, destination.hostId, opts.progress) : await this.ip.trigger(vmId, destination.hostId);
      return { destination, event };
    } finally {
      this.running.delete(vmId);
    }
  }

  async list(vmId: string | undefined, limit: number): Promise<SwitchoverEvent[]> {
    const all = [...(await this.ip.list(vmId, limit)), ...((await this.vmRoute?.list(vmId, limit)) ?? [])];
    return all.sort((a, b) => b.timestamp_unix_ms - a.timestamp_unix_ms).slice(0, limit);
  }
}

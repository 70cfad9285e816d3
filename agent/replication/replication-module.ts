// Agent module `replication`: memory shadowing on both sides. Source: the VMs of this host whose
// RAM the coordinator asks to replicate (ReplicationControlService, coordinator only). Shadow:
// receives other agents' streams into <data>/shadow/<vm>.ram (ReplicationService, agents only).
// Health reports the dirty tracker in use and why, shadows and their lag; metrics export the lag.
import { Gauge } from 'prom-client';
import { errorMessage } from '../../shared/errors';
import { channelCredentials } from '../../shared/tls';
import { AGENT_MODULE_NAMES, moduleApi, type AgentModuleDefinition, type ModuleHealth, type RunningAgentModule } from '../agent-module';
import type { CapabilityStatus } from '../os/capability-probe';
import { filesystemOf, type FilesystemKind } from '../os/filesystem-kind';
import { type GuestMemoryLocator, describeLocator, locateGuestProcess } from '../memory/guest-process-locator';
import { nativeAvailable } from '../memory/native-binding';
import { locateGuestRam, ProcGuestMemory } from '../memory/proc-guest-memory';
import { selectDirtyTracker } from '../memory/tracker-selector';
import { grpcShadowChannelFactory } from './grpc-shadow-channel';
import { replicationControlService } from './replication-control-service';
import { parseReplicationAgentConfig, type ReplicationAgentConfig } from './replication-config';
import { ReplicationManager, type ShadowEndpoint, type SourceStatus } from './replication-manager';
import { ReplicationReceiver, type ShadowStatus } from './replication-receiver';
import { REPLICATION_SERVICE_NAME, replicationServiceHandlers } from './replication-service';
import { shadowImagePath } from './shadow-image';

/** What other agent modules (e.g. VM discovery, switchover) call on a running `replication` module. */
export interface ReplicationModuleApi {
  /** Makes a VM replicable here (replaces its locator if known). */
  registerVm(vmId: string, locator: GuestMemoryLocator): void;
  /** Stops its replication and forgets it. */
  unregisterVm(vmId: string): Promise<void>;
  /** Starts (or reshapes) replication of a registered VM towards `shadows`. */
  startSource(vmId: string, shadows: ShadowEndpoint[]): Promise<SourceStatus>;
  stopSource(vmId: string): Promise<boolean>;
  /** Guest paused by the caller: final delta; resolves with the epoch every shadow acknowledged. */
  /** `waitFor`: the shadow hosts whose acknowledgement it waits for (all when absent). */
  flush(vmId: string, timeoutMs?: number, waitFor?: readonly string[]): Promise<{ finalEpoch: number; flushMs: number }>;
  /** Before the guest's pause: rounds stopped and the shadows caught up with what was sent (up to maxWaitMs). */
  quiesce(vmId: string, maxWaitMs: number, waitFor?: readonly string[]): Promise<{ waitedMs: number; drained: boolean }>;
  resume(vmId: string): Promise<void>;
  sources(): SourceStatus[];
  /** Shadow images held here (live sessions and those persisted from before a restart). */
  images(): Promise<ShadowStatus[]>;
  /** Shadow images with a live session (in memory, no store read): the only ones whose epoch moves. */
  liveImages(): ShadowStatus[];
}

export type RunningReplicationModule = RunningAgentModule & ReplicationModuleApi;

/**
 * Where shadow images live and what that costs. A disk file system is no problem for the agent,
 * but an operator should know: each synced epoch is written out (in the lab, one busy guest with
 * two shadows cost about 25 MB/s of disk writes), and a guest promoted here runs on that file and
 * has its dirty RAM written back. hugetlbfs, or a file system that cannot be read, is a problem.
 */
export async function imageDirCapability(dir: string, kindOf: (dir: string) => Promise<FilesystemKind> = filesystemOf): Promise<CapabilityStatus> {
  let kind: FilesystemKind;
  try {
    kind = await kindOf(dir);
  } catch (err) {
    return { name: 'shadow-image-dir', available: false, detail: `${dir}: ${errorMessage(err)}` };
  }
  // hugetlbfs files take no write(2): the receiver could not write a single page there.
  if (kind.name === 'hugetlbfs') return { name: 'shadow-image-dir', available: false, detail: `${dir} is on hugetlbfs, where images cannot be written (no pwrite); use a tmpfs` };
  return {
    name: 'shadow-image-dir',
    available: true,
    detail: kind.inMemory
      ? `${dir} on ${kind.name} (memory)`
      : `${dir} on ${kind.name} (disk): replicated pages are written to disk and a guest promoted here has its RAM written back; a tmpfs shadow_image_dir avoids both`,
  };
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

export const replicationAgentModule: AgentModuleDefinition<ReplicationAgentConfig> = {
  name: AGENT_MODULE_NAMES.replication,
  parseConfig: parseReplicationAgentConfig,
  async start(config, ctx): Promise<RunningReplicationModule> {
    const log = ctx.logger;
    type VmListing = { vmId: string; role: string; status: string; pid: number; memoryBytes: number };
    const vmModule = () => moduleApi<{ host: { list(): Promise<VmListing[]> } }>(ctx.modules, AGENT_MODULE_NAMES.vm, 'host');
    const receiver = new ReplicationReceiver({
      imageDir: ctx.shadowImageDir,
      store: ctx.store,
      log: log.child({ side: 'shadow' }),
      // The paused QEMU a VM left here when it switched over away (not one that runs: that would be its source).
      seedFrom: async (vmId, sizeBytes) => {
        const vms = vmModule();
        if (typeof vms?.host.list !== 'function') return undefined;
        const copy = (await vms.host.list()).find((v) => v.vmId === vmId && v.role === 'local' && v.pid > 0 && v.memoryBytes === sizeBytes && v.status !== 'running');
        return copy ? ProcGuestMemory.open(locateGuestRam(copy.pid, { sizeBytes })) : undefined;
      },
    });
    const manager = new ReplicationManager(
      {
        hostId: ctx.hostId,
        openGuest(vmId, locator) {
          const { pid, pathContains } = locateGuestProcess(locator);
          const region = locateGuestRam(pid, { sizeBytes: locator.memoryBytes, pathContains });
          log.info({ vmId, pid, start: region.startAddress.toString(16), backing: region.backingPath, how: describeLocator(locator) }, 'guest RAM located');
          return ProcGuestMemory.open(region);
        },
        currentLocator: async (vmId) => {
          // The vm module's own QEMU of the VM, when it runs it here: its process holds the RAM.
          const vms = vmModule();
          if (typeof vms?.host.list !== 'function') return undefined;
          const local = (await vms.host.list()).find((v) => v.vmId === vmId && v.role === 'local' && v.pid > 0 && v.memoryBytes > 0);
          return local ? { pid: local.pid, memoryBytes: local.memoryBytes } : undefined;
        },
        selectTracker: (memory, order) => selectDirtyTracker(memory, { order }),
        // Our own agent identity on the way out; the shadow must prove it is agent/<hostId>.
        channelFactory: (hostId, endpoint) => grpcShadowChannelFactory(endpoint, channelCredentials(ctx.tls, { role: 'agent', name: hostId })),
        log: log.child({ side: 'source' }),
      },
      config,
    );
    for (const vm of config.vms) manager.registerVm(vm.id, vm);

    const images = async (): Promise<ShadowStatus[]> => {
      const live = receiver.status();
      const persisted = await receiver.states.list();
      const rest = persisted
        .filter((p) => !live.some((l) => l.vmId === p.vmId))
        .map((p) => ({ vmId: p.vmId, generation: p.generation, epoch: p.epoch, imagePath: shadowImagePath(ctx.shadowImageDir, p.vmId), connected: false, framesApplied: 0, framesRejected: 0, bytesApplied: 0 }));
      return [...live, ...rest].sort((a, b) => a.vmId.localeCompare(b.vmId));
    };

    const lagGauge = new Gauge({
      name: 'umbra_agent_replication_lag_bytes',
      help: 'Bytes written in the guest and not yet acknowledged by the shadow',
      labelNames: ['vm', 'shadow'],
      registers: [ctx.metrics],
      collect() {
        this.reset();
        for (const s of manager.status()) for (const l of s.shadows) this.set({ vm: s.vmId, shadow: l.id }, l.lagBytes);
      },
    });
    const ackGauge = new Gauge({
      name: 'umbra_agent_replication_acked_epoch',
      help: 'Latest epoch the shadow acknowledged',
      labelNames: ['vm', 'shadow'],
      registers: [ctx.metrics],
      collect() {
        this.reset();
        for (const s of manager.status()) for (const l of s.shadows) this.set({ vm: s.vmId, shadow: l.id }, l.ackedEpoch);
      },
    });
    const rateGauge = new Gauge({
      name: 'umbra_agent_replication_dirty_rate_bytes_per_second',
      help: 'Measured guest dirty rate (smoothed)',
      labelNames: ['vm', 'tracker'],
      registers: [ctx.metrics],
      collect() {
        this.reset();
        for (const s of manager.status()) this.set({ vm: s.vmId, tracker: s.tracker }, s.dirtyRateBytesPerSec);
      },
    });
    const imageGauge = new Gauge({
      name: 'umbra_agent_shadow_image_epoch',
      help: 'Epoch applied to the shadow image held here',
      labelNames: ['vm'],
      registers: [ctx.metrics],
      collect() {
        this.reset();
        for (const s of receiver.status()) this.set({ vm: s.vmId }, s.epoch);
      },
    });

    const health = async (): Promise<ModuleHealth> => {
      const sources = manager.status();
      const problems: string[] = [];
      const tracking: CapabilityStatus = sources.length === 0
        ? { name: 'dirty-tracking', available: nativeAvailable(), detail: `no VM replicating (${manager.knownVms().length} replicable); native addon ${nativeAvailable() ? 'built' : 'missing: only the hash tracker can run'}` }
        : {
            name: 'dirty-tracking',
            available: true,
            detail: sources
              .map((s) => {
                const skipped = s.trackerAttempts.filter((a) => !a.ok).map((a) => `${a.name} skipped: ${a.reason}`);
                return `${s.vmId}: ${s.tracker}${skipped.length ? ` (${skipped.join('; ')})` : ' (first choice)'}`;
              })
              .join('; '),
          };
      for (const s of sources) {
        if (s.tracker !== 'uffd-wp') problems.push(`${s.vmId} tracks dirty pages with ${s.tracker}, not uffd-wp: switchover flushes grow with VM size`);
        for (const l of s.shadows) {
          if (l.lagBytes > config.maxLagBytes) problems.push(`${s.vmId} -> ${l.id}: lag ${mib(l.lagBytes)} above ${mib(config.maxLagBytes)}`);
          if (l.state === 'shadow-error') problems.push(`${s.vmId} -> ${l.id}: shadow error ${l.shadowError}: ${l.lastError ?? ''}`);
        }
      }
      const imgs = await images();
      for (const i of imgs) if (i.lastError) problems.push(`shadow image of ${i.vmId}: ${i.lastError}`);
      const imageDir = await imageDirCapability(ctx.shadowImageDir);
      if (!imageDir.available) problems.push(`shadow_image_dir ${imageDir.detail}`);
      return {
        problems: problems.slice(0, 8),
        capabilities: [
          tracking,
          {
            name: 'memory-replication',
            available: true,
            detail:
              sources.length === 0
                ? 'no VM replicating'
                : sources
                    .map((s) => `${s.vmId}@${s.epoch}${s.running ? '' : ' (flushed)'} -> ${s.shadows.map((l) => `${l.id} ${l.state} acked ${l.ackedEpoch} lag ${mib(l.lagBytes)}`).join(', ') || 'no shadows'}`)
                    .join('; '),
          },
          {
            name: 'memory-shadows',
            available: true,
            detail: imgs.length === 0 ? 'none' : imgs.map((i) => `${i.vmId}@${i.epoch}${i.connected ? ' (streaming)' : ''}${i.lastError ? ` error: ${i.lastError}` : ''}`).join(', '),
          },
          imageDir,
        ],
      };
    };

    log.info({ vms: manager.knownVms(), trackers: config.trackers, budget: config.bandwidthBudgetBytesPerSec, native: nativeAvailable() }, 'replication started');
    const api: ReplicationModuleApi = {
      registerVm: (vmId, locator) => manager.registerVm(vmId, locator),
      unregisterVm: (vmId) => manager.unregisterVm(vmId),
      startSource: (vmId, shadows) => manager.start(vmId, shadows),
      stopSource: (vmId) => manager.stop(vmId),
      flush: (vmId, timeoutMs = 30_000, waitFor) => manager.flush(vmId, timeoutMs, waitFor),
      quiesce: (vmId, maxWaitMs, waitFor) => manager.quiesce(vmId, maxWaitMs, waitFor),
      resume: (vmId) => manager.resume(vmId),
      sources: () => manager.status(),
      images,
      liveImages: () => receiver.status(),
    };
    return {
      ...api,
      services: [
        {
          name: REPLICATION_SERVICE_NAME,
          // Peer agents only: an operator or the coordinator has no business writing shadow images.
          handlers: replicationServiceHandlers(receiver, { access: ['agent'], log: log.child({ side: 'shadow' }) }),
        },
        replicationControlService({ manager, images, logger: log }),
      ],
      health,
      async close() {
        await manager.close().catch((err) => log.warn({ err: errorMessage(err) }, 'stopping replication failed'));
        await receiver.close();
        for (const g of [lagGauge, ackGauge, rateGauge, imageGauge]) g.reset();
      },
    };
  },
};


// Agent module `vm`: the QEMU driver. Local VMs (declared in config and launched with the uffd
// preload library, or discovered from running QEMU with a QMP socket), shadow VMs for the
// switchover, VmService for the coordinator, and health listing both.
import { existsSync } from 'node:fs';
import { errorMessage } from '../../shared/errors';
import { AGENT_MODULE_NAMES, moduleApi, type AgentModuleDefinition, type ModuleHealth, type RunningAgentModule } from '../agent-module';
import type { ReplicationModuleApi } from '../replication/replication-module';
import { uffdPreloadLibraryPath } from '../memory/native-binding';
import { shadowImagePath } from '../replication/shadow-image';
import { VmAgentHost } from './vm-agent-host';
import { VM_SERVICE, vmService } from './vm-agent-service';
import { warmUpMessageCodecs } from '../../shared/proto';
import { parseVmAgentConfig, type VmAgentConfig } from './vm-module-config';

export type RunningVmModule = RunningAgentModule & {
  host: VmAgentHost;
  /** The tap this host's QEMU of `vmId` (local, else shadow) uses for the NIC with `mac` (ipshadow reads it). */
  tapOf(vmId: string, mac: string): string | undefined;
  /** Resolves once this host's guest of `vmId` is paused (ipshadow's hand-over after a switch-out's pause). */
  awaitGuestPaused(vmId: string, timeoutMs: number): Promise<void>;
  /** Waits (up to timeoutMs) for an armed resume of the VM in progress here to see the load end (or to end); at once when none is. */
  armedResumeLoaded(vmId: string, timeoutMs: number): Promise<void>;
};

export const vmAgentModule: AgentModuleDefinition<VmAgentConfig> = {
  name: AGENT_MODULE_NAMES.vm,
  parseConfig: parseVmAgentConfig,
  async start(config, ctx): Promise<RunningVmModule> {
    const log = ctx.logger;
    // A switchover's calls are the first use of their messages: their codecs are built now, not inside the guest's pause.
    warmUpMessageCodecs([VM_SERVICE]);
    const preload = config.preloadUffd ? uffdPreloadLibraryPath() : undefined;
    const preloadOk = preload !== undefined && existsSync(preload);
    if (config.preloadUffd && !preloadOk) log.warn({ preload }, 'uffd preload library not built: launched QEMUs fall back to slower dirty tracking');
    const host = new VmAgentHost({
      config,
      dataDir: ctx.dataDir,
      ramPathOf: (vmId) => shadowImagePath(ctx.shadowImageDir, vmId),
      preloadLibraryPath: preloadOk ? preload : undefined,
      log,
    });
    await host.start();
    const health = async (): Promise<ModuleHealth> => {
      const vms = await host.list().catch((err) => {
        ctx.reportError(`listing VMs failed: ${errorMessage(err)}`);
        return [];
      });
      const problems: string[] = [];
      for (const v of vms) {
        if (v.role === 'shadow' && v.status === 'exited') problems.push(`shadow VM ${v.vmId} is not running${v.lastError ? `: ${v.lastError}` : ''}`);
        if (v.role === 'local' && v.status.startsWith('unknown')) problems.push(`VM ${v.vmId}: ${v.status}`);
      }
      const fmt = (role: string) =>
        vms
          .filter((v) => v.role === role)
          .map((v) => `${v.vmId} ${v.status}${v.pid ? ` pid ${v.pid}` : ''}${v.incomingUri ? ` ${v.incomingUri}` : ''}${v.relaunches ? ` relaunched ${v.relaunches}x` : ''}`)
          .join(', ') || 'none';
      return {
        problems,
        capabilities: [
          { name: 'vms', available: true, detail: fmt('local') },
          { name: 'shadow-vms', available: config.incomingHost !== '', detail: config.incomingHost ? fmt('shadow') : 'vm.incoming_host not set: no shadow VMs here' },
          { name: 'uffd-preload', available: preloadOk, detail: preloadOk ? preload! : config.preloadUffd ? `missing ${preload}` : 'disabled' },
        ],
      };
    };
    log.info({ vms: (await host.list()).map((v) => `${v.vmId}:${v.role}:${v.status}`), preload: preloadOk }, 'vm started');
    return { host, tapOf: (vmId, mac) => host.nicTap(vmId, mac)?.tap, awaitGuestPaused: (vmId, timeoutMs) => host.awaitGuestPaused(vmId, timeoutMs), armedResumeLoaded: (vmId, timeoutMs) => host.armedResumeLoaded(vmId, timeoutMs), services: [vmService(host, log, () => {
      const replication = moduleApi<ReplicationModuleApi>(ctx.modules, AGENT_MODULE_NAMES.replication, 'flush');
      if (!replication) return undefined;
      return {
        flush: async (vmId, timeoutMs, waitFor) => {
          const r = await replication.flush(vmId, timeoutMs, waitFor);
          // Where the flush's time went (scan, read, encode, send, ack), for the switchover's figures.
          const f = replication.sources().find((s) => s.vmId === vmId)?.lastFlush;
          if (f) log.info({ vmId, flush: f }, 'switch-out flush');
          return r;
        },
        quiesce: (vmId, maxWaitMs, waitFor) => replication.quiesce(vmId, maxWaitMs, waitFor),
      };
    })], health, close: () => host.close() };
  },
};

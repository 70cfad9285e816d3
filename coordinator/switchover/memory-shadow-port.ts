// MemoryPort of the switchover over the running `memory` module: readiness of a destination's
// memory shadow (source, link streaming, lag under the bound), final flush, resume and stop.
import type { MemoryShadowApi } from '../memory/memory-module';
import type { MemoryPort } from './switchover-ports';

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

export function memoryPortOf(memory: MemoryShadowApi, maxLagBytes: number): MemoryPort {
  return {
    async notReadyReason(vmId, sourceHost, hostId) {
      const rec = memory.memoryShadow(vmId);
      if (!rec) return 'its memory is not shadowed anywhere';
      if (rec.source_host !== sourceHost) return `its memory shadow replicates from '${rec.source_host}', not from '${sourceHost}'`;
      if (!rec.shadow_hosts.includes(hostId)) return `no memory shadow there (shadows: ${rec.shadow_hosts.join(', ') || 'none'})`;
      if (rec.resync_pending?.includes(hostId)) return 'its memory shadow was declared invalid and the re-sync is not yet accepted by the source';
      const [view] = await memory.listMemoryShadows(vmId);
      if (!view?.status) return `the source agent does not replicate it${view?.statusError ? ` (${view.statusError})` : ''}`;
      const link = view.status.shadows.find((l) => l.host_id === hostId);
      if (!link) return 'the source has no replication link to it';
      if (link.state !== 'streaming') return `memory replication link is ${link.state}${link.last_error ? ` (${link.last_error})` : ''}`;
      if (Number(link.acked_epoch) === 0) return 'memory shadow has not completed its first full copy';
      const lag = Number(link.lag_bytes);
      if (lag > maxLagBytes) return `memory lag ${mib(lag)} above ${mib(maxLagBytes)}`;
      return undefined;
    },
    flush: (vmId, timeoutMs) => memory.flushMemoryShadow(vmId, timeoutMs),
    flushed: (vmId, sourceHost, finalEpoch) => memory.noteMemoryShadowFlushed(vmId, sourceHost, finalEpoch),
    resume: (vmId) => memory.resumeMemoryShadow(vmId),
    async stop(vmId, sourceHost) {
      // Already stopped, or replaced by a replication from the VM's new host: nothing of this source to stop.
      const rec = memory.memoryShadow(vmId);
      if (!rec || (sourceHost !== undefined && rec.source_host !== sourceHost)) return;
      await memory.stopMemoryShadow(vmId);
    },
    resyncShadow: (vmId, hostId, reason) => memory.resyncMemoryShadow(vmId, hostId, reason),
  };
}

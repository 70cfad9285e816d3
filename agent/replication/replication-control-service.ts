// gRPC handlers of umbra.agent.v1.ReplicationControlService: the coordinator starts, reshapes,
// flushes and stops replication of this host's VMs, and reads its state (coordinator identity only).
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { InvalidArgumentError, NotFoundError } from '../../shared/errors';
import { HandlerKit } from '../../shared/grpc-handlers';
import type { ServiceBinding } from '../../shared/grpc-server';
import { requireEndpoint, requireHostId, requireVmId, toSafeInteger } from '../../shared/validate';
import type { ShadowStatus } from './replication-receiver';
import type { ReplicationManager, ShadowEndpoint, SourceStatus } from './replication-manager';
import { shadowImageToWire } from './replication-service';
import { DEFAULT_FLUSH_TIMEOUT_MS } from './replication-source';

export const REPLICATION_CONTROL_SERVICE = 'umbra.agent.v1.ReplicationControlService';
const MAX_FLUSH_TIMEOUT_MS = 600_000;
const MAX_SHADOWS = 16;
const MAX_REASON_CHARS = 1024;

type Msg = Record<string, unknown>;

export function sourceStatusToWire(s: SourceStatus): Msg {
  return {
    vm_id: s.vmId,
    generation: s.generation,
    tracker: s.tracker,
    tracker_attempts: s.trackerAttempts.map((a) => ({ tracker: a.name, ok: a.ok, reason: a.reason })),
    epoch: String(s.epoch),
    running: s.running,
    dirty_rate_bytes_per_s: s.dirtyRateBytesPerSec,
    round_interval_ms: Math.round(s.roundIntervalMs),
    memory_bytes: String(s.memoryBytes),
    last_scan_ms: s.lastRound?.scanMs ?? 0,
    last_dirty_pages: s.lastRound?.dirtyPages ?? 0,
    shadows: s.shadows.map((l) => ({
      host_id: l.id,
      endpoint: s.endpoints[l.id] ?? '',
      state: l.state,
      acked_epoch: String(l.ackedEpoch),
      lag_bytes: String(l.lagBytes),
      frames_sent: String(l.framesSent),
      bytes_sent: String(l.bytesSent),
      reconnects: l.reconnects,
      full_resends: l.fullResends,
      resyncs: l.resyncs,
      resync_pending: l.resyncPending,
      digest_resends: l.digestResends,
      digest_spared_pages: String(l.digestSparedPages),
      last_error: l.shadowError ? `${l.shadowError}: ${l.lastError ?? ''}` : l.lastError ?? '',
    })),
  };
}

export function parseShadowEndpoints(v: unknown, opts: { min: number }): ShadowEndpoint[] {
  if (v !== undefined && v !== null && !Array.isArray(v)) throw new InvalidArgumentError('shadows', 'must be a list');
  const list = (v ?? []) as Msg[];
  if (list.length < opts.min) throw new InvalidArgumentError('shadows', `needs at least ${opts.min} shadow`);
  if (list.length > MAX_SHADOWS) throw new InvalidArgumentError('shadows', `at most ${MAX_SHADOWS} shadows`);
  return list.map((s, i) => ({
    hostId: requireHostId(`shadows[${i}].host_id`, s?.host_id),
    endpoint: requireEndpoint(`shadows[${i}].endpoint`, s?.endpoint),
  }));
}

export function replicationControlService(deps: { manager: ReplicationManager; images: () => Promise<ShadowStatus[]>; logger: Logger }): ServiceBinding {
  const kit = new HandlerKit(deps.logger);
  const coordinatorOnly = ['coordinator'] as const;
  const m = deps.manager;
  const handlers: grpc.UntypedServiceImplementation = {
    StartReplication: kit.unary<Msg, Msg>('StartReplication', coordinatorOnly, async (req) => {
      const vmId = requireVmId('vm_id', req.vm_id);
      return { status: sourceStatusToWire(await m.start(vmId, parseShadowEndpoints(req.shadows, { min: 1 }))) };
    }),
    UpdateShadows: kit.unary<Msg, Msg>('UpdateShadows', coordinatorOnly, async (req) => {
      const vmId = requireVmId('vm_id', req.vm_id);
      return { status: sourceStatusToWire(await m.updateShadows(vmId, parseShadowEndpoints(req.shadows, { min: 0 }))) };
    }),
    StopReplication: kit.unary<Msg, Msg>('StopReplication', coordinatorOnly, async (req) => ({ stopped: await m.stop(requireVmId('vm_id', req.vm_id)) })),
    FlushReplication: kit.unary<Msg, Msg>('FlushReplication', coordinatorOnly, async (req) => {
      const vmId = requireVmId('vm_id', req.vm_id);
      const t = toSafeInteger('timeout_ms', req.timeout_ms ?? 0, { min: 0, max: MAX_FLUSH_TIMEOUT_MS });
      const destination = req.destination_host ? requireHostId('destination_host', req.destination_host) : '';
      const r = await m.flush(vmId, t === 0 ? DEFAULT_FLUSH_TIMEOUT_MS : t, destination ? [destination] : undefined);
      return { final_epoch: String(r.finalEpoch), flush_ms: r.flushMs };
    }),
    ResumeReplication: kit.unary<Msg, Msg>('ResumeReplication', coordinatorOnly, async (req) => {
      await m.resume(requireVmId('vm_id', req.vm_id));
      return {};
    }),
    ResyncShadow: kit.unary<Msg, Msg>('ResyncShadow', coordinatorOnly, async (req) => {
      const vmId = requireVmId('vm_id', req.vm_id);
      const hostId = requireHostId('host_id', req.host_id);
      const reason = req.reason === undefined || req.reason === null ? '' : req.reason;
      if (typeof reason !== 'string' || reason.length > MAX_REASON_CHARS) throw new InvalidArgumentError('reason', `must be a string of at most ${MAX_REASON_CHARS} characters`);
      return { status: sourceStatusToWire(await m.resyncShadow(vmId, hostId, reason || 'declared invalid by the coordinator')) };
    }),
    GetReplicationStatus: kit.unary<Msg, Msg>('GetReplicationStatus', coordinatorOnly, async (req) => {
      const vmId = req.vm_id ? requireVmId('vm_id', req.vm_id) : undefined;
      const images = (await deps.images()).filter((i) => !vmId || i.vmId === vmId);
      // One VM: its source state if it replicates here, its image if this host shadows it; else unknown here.
      if (vmId && !m.isReplicating(vmId) && images.length === 0 && !m.knownVms().includes(vmId)) throw new NotFoundError('vm', vmId);
      const sources = vmId ? (m.isReplicating(vmId) ? m.status(vmId) : []) : m.status();
      return { sources: sources.map(sourceStatusToWire), images: images.map(shadowImageToWire), known_vms: m.knownVms() };
    }),
  };
  return { name: REPLICATION_CONTROL_SERVICE, handlers };
}

// gRPC handlers of umbra.coordinator.v1.MemoryService: operators (and the coordinator itself)
// start, stop, flush and list memory shadows.
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { InvalidArgumentError } from '../../shared/errors';
import { HandlerKit } from '../../shared/grpc-handlers';
import type { ServiceBinding } from '../../shared/grpc-server';
import { requireHostId, toSafeInteger } from '../../shared/validate';
import { requireVmId } from '../../shared/validate';
import { DEFAULT_FLUSH_TIMEOUT_MS, type MemoryShadowManager, type MemoryShadowView } from './memory-shadow-manager';

export const MEMORY_SERVICE = 'umbra.coordinator.v1.MemoryService';
const MAX_SHADOW_HOSTS = 16;
const MAX_FLUSH_TIMEOUT_MS = 600_000;

type Msg = Record<string, unknown>;

export function memoryShadowToWire(v: MemoryShadowView): Msg {
  return {
    vm_id: v.record.vm_id,
    source_host: v.record.source_host,
    shadow_hosts: v.record.shadow_hosts,
    started_at_unix_ms: String(v.record.started_at_unix_ms),
    status: v.status ?? null,
    status_error: v.statusError,
    last_final_epoch: String(v.record.last_final_epoch),
    automatic: v.record.auto === true,
  };
}

function shadowHosts(v: unknown): string[] {
  if (!Array.isArray(v) || v.length === 0) throw new InvalidArgumentError('shadow_hosts', 'needs at least one host id');
  if (v.length > MAX_SHADOW_HOSTS) throw new InvalidArgumentError('shadow_hosts', `at most ${MAX_SHADOW_HOSTS} hosts`);
  return v.map((h, i) => requireHostId(`shadow_hosts[${i}]`, h));
}

export function memoryService(deps: { manager: MemoryShadowManager; logger: Logger }): ServiceBinding {
  const kit = new HandlerKit(deps.logger);
  const callers = ['operator', 'coordinator'] as const;
  const m = deps.manager;
  const handlers: grpc.UntypedServiceImplementation = {
    StartMemoryShadow: kit.unary<Msg, Msg>('StartMemoryShadow', callers, async (req) => {
      const vmId = requireVmId('vm_id', req.vm_id);
      const source = requireHostId('source_host', req.source_host);
      return { shadow: memoryShadowToWire(await m.start(vmId, source, shadowHosts(req.shadow_hosts))) };
    }),
    StopMemoryShadow: kit.unary<Msg, Msg>('StopMemoryShadow', callers, async (req) => {
      // An explicit stop: the coordinator will not start this VM's replication again by itself.
      await m.stop(requireVmId('vm_id', req.vm_id), { byOperator: true });
      return {};
    }),
    FlushMemoryShadow: kit.unary<Msg, Msg>('FlushMemoryShadow', callers, async (req) => {
      const vmId = requireVmId('vm_id', req.vm_id);
      const t = toSafeInteger('timeout_ms', req.timeout_ms ?? 0, { min: 0, max: MAX_FLUSH_TIMEOUT_MS });
      const r = await m.flush(vmId, t === 0 ? DEFAULT_FLUSH_TIMEOUT_MS : t);
      return { final_epoch: String(r.finalEpoch), flush_ms: r.flushMs };
    }),
    ListMemoryShadows: kit.unary<Msg, Msg>('ListMemoryShadows', callers, async (req) => {
      const vmId = req.vm_id ? requireVmId('vm_id', req.vm_id) : undefined;
      return { shadows: (await m.list(vmId)).map(memoryShadowToWire) };
    }),
  };
  return { name: MEMORY_SERVICE, handlers };
}

// gRPC handlers of umbra.agent.v1.VmService: local and shadow VMs, pause/resume and the
// device-state migration, for the coordinator's identity only.
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { FailedPreconditionError, InvalidArgumentError } from '../../shared/errors';
import { HandlerKit } from '../../shared/grpc-handlers';
import type { ServiceBinding } from '../../shared/grpc-server';
import { requireHostId, toSafeInteger } from '../../shared/validate';
import { MAX_ARMED_RESUME_WAIT_MS, type SwitchOutMemory, type VmAgentHost, type VmRole, type VmView } from './vm-agent-host';

export const VM_SERVICE = 'umbra.agent.v1.VmService';
const MAX_MIGRATE_TIMEOUT_MS = 600_000;
/** SwitchOutVm's flush when the request gives no timeout (the coordinator's default). */
const DEFAULT_FLUSH_TIMEOUT_MS = 10_000;

type Msg = Record<string, unknown>;

export function vmViewToWire(v: VmView): Msg {
  return {
    vm_id: v.vmId,
    role: v.role === 'local' ? 'VM_ROLE_LOCAL' : 'VM_ROLE_SHADOW',
    status: v.status,
    running: v.running,
    pid: v.pid,
    memory_bytes: String(v.memoryBytes),
    definition_json: v.definition ? JSON.stringify(v.definition) : '',
    incoming_uri: v.incomingUri,
    ram_path: v.ramPath,
    relaunches: v.relaunches,
    last_error: v.lastError,
  };
}

function roleOf(v: unknown): VmRole | undefined {
  if (v === undefined || v === 'VM_ROLE_UNSPECIFIED' || v === 0) return undefined;
  if (v === 'VM_ROLE_LOCAL' || v === 1) return 'local';
  if (v === 'VM_ROLE_SHADOW' || v === 2) return 'shadow';
  throw new InvalidArgumentError('role', `unknown role ${String(v)}`);
}

function vmIdOf(req: Msg): string {
  if (typeof req.vm_id !== 'string' || req.vm_id === '') throw new InvalidArgumentError('vm_id', 'must be a non-empty string');
  return req.vm_id;
}

/**
 * `flush`: the replication module's final flush, looked up at call time (SwitchOutVm is refused
 * with FAILED_PRECONDITION on an agent without it, before anything is paused).
 */
export function vmService(host: VmAgentHost, logger: Logger, memory?: () => SwitchOutMemory | undefined): ServiceBinding {
  const kit = new HandlerKit(logger);
  const only = ['coordinator'] as const;
  const handlers: grpc.UntypedServiceImplementation = {
    ListVms: kit.unary<Msg, Msg>('ListVms', only, async () => ({ vms: (await host.list()).map(vmViewToWire) })),
    QueryVm: kit.unary<Msg, Msg>('QueryVm', only, async (req) => ({ vm: vmViewToWire(await host.query(vmIdOf(req), roleOf(req.role))) })),
    PrepareShadowVm: kit.unary<Msg, Msg>('PrepareShadowVm', only, async (req) => {
      const vmId = vmIdOf(req);
      if (typeof req.definition_json !== 'string' || req.definition_json === '') throw new InvalidArgumentError('definition_json', 'must be a non-empty JSON VM definition');
      const { view, launched } = await host.prepareShadow(vmId, req.definition_json);
      return { vm: vmViewToWire(view), launched };
    }),
    RemoveShadowVm: kit.unary<Msg, Msg>('RemoveShadowVm', only, async (req) => ({ removed: await host.removeShadow(vmIdOf(req)) })),
    PauseVm: kit.unary<Msg, Msg>('PauseVm', only, async (req) => ({ duration_ms: await host.pause(vmIdOf(req)) })),
    ResumeVm: kit.unary<Msg, Msg>('ResumeVm', only, async (req) => ({ duration_ms: await host.resume(vmIdOf(req)) })),
    ResumeVmWhenLoaded: kit.unary<Msg, Msg>('ResumeVmWhenLoaded', only, async (req) => {
      const vmId = vmIdOf(req);
      const timeoutMs = toSafeInteger('timeout_ms', req.timeout_ms ?? 0, { min: 1, max: MAX_ARMED_RESUME_WAIT_MS });
      const r = await host.resumeWhenLoaded(vmId, timeoutMs);
      return { duration_ms: r.durationMs, waited_ms: r.waitedMs, running_at_unix_ms: r.runningAtMs };
    }),
    MigrateDeviceState: kit.unary<Msg, Msg>('MigrateDeviceState', only, async (req) => {
      const timeoutMs = toSafeInteger('timeout_ms', req.timeout_ms ?? 0, { min: 0, max: MAX_MIGRATE_TIMEOUT_MS });
      const r = await host.migrateDeviceState(vmIdOf(req), req.destination_uri as string, timeoutMs);
      return { duration_ms: r.elapsedMs, qemu_downtime_ms: r.downtimeMs ?? 0, ram_transferred_bytes: String(r.ramTransferredBytes) };
    }),
    SwitchOutVm: kit.unary<Msg, Msg>('SwitchOutVm', only, async (req) => {
      const vmId = vmIdOf(req);
      const deviceStateTimeoutMs = toSafeInteger('timeout_ms', req.timeout_ms ?? 0, { min: 0, max: MAX_MIGRATE_TIMEOUT_MS });
      const flushTimeoutMs = toSafeInteger('flush_timeout_ms', req.flush_timeout_ms ?? 0, { min: 0, max: MAX_MIGRATE_TIMEOUT_MS });
      const destination = req.destination_host ? requireHostId('destination_host', req.destination_host) : '';
      const mem = memory?.();
      if (!mem) throw new FailedPreconditionError(`vm '${vmId}': no replication module runs here to flush its memory`);
      // Only the destination's copy must be complete before the device state goes: the other
      // shadows' acknowledgements would only lengthen the pause.
      const waitFor = destination ? [destination] : undefined;
      const quiesce = mem.quiesce;
      const scoped: SwitchOutMemory = { flush: (v, t) => mem.flush(v, t, waitFor), ...(quiesce ? { quiesce: (v: string, w: number) => quiesce(v, w, waitFor) } : {}) };
      const r = await host.switchOut(vmId, req.destination_uri as string, { ...scoped, flushTimeoutMs: flushTimeoutMs || DEFAULT_FLUSH_TIMEOUT_MS, deviceStateTimeoutMs });
      const m = r.migration;
      return {
        pause_ms: r.pauseMs,
        flush_ms: r.flushMs ?? 0,
        final_epoch: String(r.finalEpoch ?? 0),
        migrate_ms: m?.elapsedMs ?? 0,
        qemu_downtime_ms: m?.downtimeMs ?? 0,
        ram_transferred_bytes: String(m?.ramTransferredBytes ?? 0),
        failed_step: r.failedStep ?? '',
        failed_ms: r.failedMs ?? 0,
        error: r.error ?? '',
        quiesce_ms: r.quiesceMs ?? 0,
        paused_at_unix_ms: r.pausedAtMs ?? 0,
      };
    }),
  };
  return { name: VM_SERVICE, handlers };
}

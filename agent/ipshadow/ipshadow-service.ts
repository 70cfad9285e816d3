// gRPC handlers of umbra.agent.v1.IpShadowService: shadows and IP (de)activation, for the
// coordinator's identity only.
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { InvalidArgumentError, NotFoundError } from '../../shared/errors';
import { HandlerKit } from '../../shared/grpc-handlers';
import type { ServiceBinding } from '../../shared/grpc-server';
import { toSafeInteger } from '../../shared/validate';
import type { ApplyResult } from '../net/ip-applier';
import type { ShadowRecord } from './shadow-store';
import { configToWire, parseVmIpConfig, type VmIpConfig } from '../../shared/vm-ip-config';

export const IP_SHADOW_SERVICE = 'umbra.agent.v1.IpShadowService';

type Msg = Record<string, unknown>;

/** What the handlers need from the module. */
export interface IpShadowOps {
  putShadow(sourceHost: string, config: VmIpConfig, version: number): Promise<{ record: ShadowRecord; applied: boolean }>;
  removeShadow(vmId: string): Promise<boolean>;
  listShadows(): ShadowRecord[];
  /** The config known here for `vmId` (active, shadow or local lease), if any. */
  knownConfig(vmId: string): VmIpConfig | undefined;
  /** Admits the token of a coming activate/deactivate durably and readies the announcer; no kernel change. */
  prepare(config: VmIpConfig, fencingToken: number): Promise<{ totalMs: number }>;
  activate(config: VmIpConfig, fencingToken: number): Promise<ApplyResult>;
  deactivate(config: VmIpConfig, fencingToken: number): Promise<ApplyResult>;
  state(config: VmIpConfig): Promise<{ active: boolean; fencingToken: number }>;
}

export function shadowToWire(r: ShadowRecord) {
  return {
    vm_id: r.vm_id,
    source_host: r.source_host,
    config: configToWire(r.config),
    version: String(r.version),
    received_at_unix_ms: String(r.received_at_unix_ms),
    sniffed_at_unix_ms: String(r.sniffed_at_unix_ms),
    active: r.active,
  };
}

function applyToWire(r: ApplyResult) {
  return { changed: r.changed, steps: r.steps.map((s) => ({ step: s.step, duration_ms: s.durationMs, changed: s.changed })), total_ms: r.totalMs };
}

function requireVmId(v: unknown): string {
  if (typeof v !== 'string' || v.length === 0) throw new InvalidArgumentError('vm_id', 'must be a non-empty string');
  return v;
}

export function ipShadowService(ops: IpShadowOps, logger: Logger): ServiceBinding {
  const kit = new HandlerKit(logger);
  const coordinatorOnly = ['coordinator'] as const;
  /** The request's config when it carries one, else what this host knows for the VM. */
  const configOf = (req: Msg): VmIpConfig => {
    const vmId = requireVmId(req.vm_id);
    const c = req.config as Msg | null | undefined;
    if (c && typeof c.vm_id === 'string' && c.vm_id !== '') {
      const config = parseVmIpConfig(c);
      if (config.vm_id !== vmId) throw new InvalidArgumentError('config.vm_id', `must equal vm_id '${vmId}'`);
      return config;
    }
    const known = ops.knownConfig(vmId);
    if (!known) throw new NotFoundError('ip config of vm', vmId);
    return known;
  };
  const token = (req: Msg) => toSafeInteger('fencing_token', req.fencing_token ?? 0, { min: 0 });

  const handlers: grpc.UntypedServiceImplementation = {
    PutShadow: kit.unary<Msg, Msg>('PutShadow', coordinatorOnly, async (req) => {
      if (typeof req.source_host !== 'string' || req.source_host === '') throw new InvalidArgumentError('source_host', 'must be a non-empty string');
      const config = parseVmIpConfig(req.config);
      const version = toSafeInteger('version', req.version ?? 0, { min: 1 });
      const { record, applied } = await ops.putShadow(req.source_host, config, version);
      return { shadow: shadowToWire(record), applied };
    }),
    RemoveShadow: kit.unary<Msg, Msg>('RemoveShadow', coordinatorOnly, async (req) => ({ removed: await ops.removeShadow(requireVmId(req.vm_id)) })),
    ListShadows: kit.unary<Msg, Msg>('ListShadows', coordinatorOnly, async () => ({ shadows: ops.listShadows().map(shadowToWire) })),
    PrepareIp: kit.unary<Msg, Msg>('PrepareIp', coordinatorOnly, async (req) => {
      const config = configOf(req);
      const fencingToken = token(req);
      const r = await ops.prepare(config, fencingToken);
      return { total_ms: r.totalMs, fencing_token: String(fencingToken) };
    }),
    ActivateIp: kit.unary<Msg, Msg>('ActivateIp', coordinatorOnly, async (req) => applyToWire(await ops.activate(configOf(req), token(req)))),
    DeactivateIp: kit.unary<Msg, Msg>('DeactivateIp', coordinatorOnly, async (req) => applyToWire(await ops.deactivate(configOf(req), token(req)))),
    GetIpState: kit.unary<Msg, Msg>('GetIpState', coordinatorOnly, async (req) => {
      const config = configOf(req);
      const s = await ops.state(config);
      return { active: s.active, fencing_token: String(s.fencingToken), address: config.address };
    }),
  };
  return { name: IP_SHADOW_SERVICE, handlers };
}

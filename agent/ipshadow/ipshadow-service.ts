// gRPC handlers of umbra.agent.v1.IpShadowService: shadows and IP (de)activation, for the
// coordinator's identity only.
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { InvalidArgumentError, NotFoundError } from '../../shared/errors';
import { HandlerKit } from '../../shared/grpc-handlers';
import type { ServiceBinding } from '../../shared/grpc-server';
import { toSafeInteger } from '../../shared/validate';
import { HANDOVER_DATAGRAM_KEY_BYTES } from '../../shared/handover-datagram';
import type { ApplyResult } from '../net/ip-applier';
import type { ShadowRecord } from './shadow-store';
import { configToWire, parseVmIpConfig, type VmIpConfig } from '../../shared/vm-ip-config';

/** Longest DeactivateIp may wait for the guest's pause (after_guest_paused_ms). */
export const MAX_GUEST_PAUSED_WAIT_MS = 60_000;

export const IP_SHADOW_SERVICE = 'umbra.agent.v1.IpShadowService';

type Msg = Record<string, unknown>;

/** A switchover's hand-over: the source calls HandOverIp on the destination right after its removal. */
export interface IpHandoff {
  sourceHost: string;
  destinationHost: string;
  destinationEndpoint: string;
  /** The switchover's key for the hand-over datagram; absent: HandOverIp alone. */
  datagramKey?: Buffer;
}

/** The source's report of the hand-over it was asked for. */
export interface HandoffOutcome {
  handedOver: boolean;
  /** The destination's answer as it came over the wire. */
  destination?: WireApplyResult;
  error?: string;
  /** With a datagram key: the datagram answered, sent but unanswered, or skipped (no rehearsal datagram was answered). */
  datagram?: 'answered' | 'unanswered' | 'skipped';
}

export type WireApplyResult = ReturnType<typeof applyToWire>;

/** What the handlers need from the module. */
export interface IpShadowOps {
  putShadow(sourceHost: string, config: VmIpConfig, version: number): Promise<{ record: ShadowRecord; applied: boolean }>;
  removeShadow(vmId: string): Promise<boolean>;
  listShadows(): ShadowRecord[];
  /** The config known here for `vmId` (active, shadow or local lease), if any. */
  knownConfig(vmId: string): VmIpConfig | undefined;
  /** Admits the token of a coming activate/deactivate durably and readies the announcer; no kernel change. */
  prepare(config: VmIpConfig, fencingToken: number, handoff?: IpHandoff): Promise<{ totalMs: number }>;
  /** `receivedAtMs`: wall-clock ms the request arrived (for the log line; default now). */
  activate(config: VmIpConfig, fencingToken: number, receivedAtMs?: number): Promise<ApplyResult>;
  /** `afterGuestPausedMs`: first wait (up to that long) until this host's guest of the VM is paused. */
  deactivate(config: VmIpConfig, fencingToken: number, handoff?: IpHandoff, afterGuestPausedMs?: number): Promise<ApplyResult & { handoff?: HandoffOutcome }>;
  /**
   * HandOverIp from agent `fromHost`: refused unless a PrepareIp named that source and token. A
   * `rehearsal` (token 0) only checks that a hand-over from that source is expected and reads state.
   */
  handOver(config: VmIpConfig, fencingToken: number, fromHost: string, rehearsal?: boolean): Promise<ApplyResult>;
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

export function applyToWire(r: ApplyResult) {
  return { changed: r.changed, steps: r.steps.map((s) => ({ step: s.step, duration_ms: s.durationMs, changed: s.changed })), total_ms: r.totalMs };
}

function requireText(field: string, v: unknown): string {
  if (typeof v !== 'string' || v.length === 0) throw new InvalidArgumentError(field, 'must be a non-empty string');
  return v;
}

/** The request's hand-over, or undefined when it has none (absent or empty message). */
export function parseHandoff(v: unknown): IpHandoff | undefined {
  const h = v as Msg | null | undefined;
  if (!h || (!h.source_host && !h.destination_host && !h.destination_endpoint)) return undefined;
  const handoff = {
    sourceHost: requireText('handoff.source_host', h.source_host),
    destinationHost: requireText('handoff.destination_host', h.destination_host),
    destinationEndpoint: requireText('handoff.destination_endpoint', h.destination_endpoint),
    ...datagramKeyOf(h.datagram_key),
  };
  if (handoff.sourceHost === handoff.destinationHost) throw new InvalidArgumentError('handoff.destination_host', 'must differ from handoff.source_host');
  return handoff;
}

function datagramKeyOf(v: unknown): { datagramKey?: Buffer } {
  if (v === undefined || v === null || (Buffer.isBuffer(v) && v.length === 0)) return {};
  if (!Buffer.isBuffer(v) || v.length !== HANDOVER_DATAGRAM_KEY_BYTES) {
    throw new InvalidArgumentError('handoff.datagram_key', `must be ${HANDOVER_DATAGRAM_KEY_BYTES} bytes or empty`);
  }
  return { datagramKey: Buffer.from(v) };
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
      const r = await ops.prepare(config, fencingToken, parseHandoff(req.handoff));
      return { total_ms: r.totalMs, fencing_token: String(fencingToken) };
    }),
    ActivateIp: kit.unary<Msg, Msg>('ActivateIp', coordinatorOnly, async (req) => applyToWire(await ops.activate(configOf(req), token(req)))),
    DeactivateIp: kit.unary<Msg, Msg>('DeactivateIp', coordinatorOnly, async (req) => {
      const afterPaused = toSafeInteger('after_guest_paused_ms', req.after_guest_paused_ms ?? 0, { min: 0, max: MAX_GUEST_PAUSED_WAIT_MS });
      const r = await ops.deactivate(configOf(req), token(req), parseHandoff(req.handoff), afterPaused || undefined);
      const h = r.handoff;
      return { ...applyToWire(r), handed_over: h?.handedOver ?? false, ...(h?.destination ? { destination: h.destination } : {}), handoff_error: h?.error ?? '' };
    }),
    // Only another agent calls it (the switchover's source); the module checks it is the one expected.
    HandOverIp: kit.unary<Msg, Msg>('HandOverIp', ['agent'], async (req, ctx) => {
      const rehearsal = req.rehearsal === true;
      const fencingToken = token(req);
      if (rehearsal && fencingToken !== 0) throw new InvalidArgumentError('fencing_token', 'must be 0 in a rehearsal');
      return applyToWire(await ops.handOver(configOf(req), fencingToken, ctx.peer.name, rehearsal));
    }),
    GetIpState: kit.unary<Msg, Msg>('GetIpState', coordinatorOnly, async (req) => {
      const config = configOf(req);
      const s = await ops.state(config);
      return { active: s.active, fencing_token: String(s.fencingToken), address: config.address };
    }),
  };
  return { name: IP_SHADOW_SERVICE, handlers };
}

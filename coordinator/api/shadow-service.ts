// gRPC handlers of umbra.coordinator.v1.ShadowService: agents report their VMs' IP configs (own host
// only); operators list, place and remove shadows.
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { InvalidArgumentError, PermissionDeniedError } from '../../shared/errors';
import { HandlerKit } from '../../shared/grpc-handlers';
import type { ServiceBinding } from '../../shared/grpc-server';
import { requireHostId } from '../../shared/validate';
import { configToWire, parseVmIpConfig } from '../../shared/vm-ip-config';
import type { ShadowEntry, ShadowManager } from '../shadow/shadow-manager';
import type { VmIpRecord, VmIpRegistry } from '../shadow/vm-ip-registry';

export const SHADOW_SERVICE = 'umbra.coordinator.v1.ShadowService';
const MAX_REPORTED_VMS = 1000;

type Msg = Record<string, unknown>;

export function vmToWire(v: VmIpRecord) {
  return { vm_id: v.vm_id, active_host: v.active_host, config: configToWire(v.config), version: String(v.version), updated_at_unix_ms: String(v.updated_at_unix_ms) };
}

export function shadowEntryToWire(e: ShadowEntry, currentVersion: number) {
  return {
    ...e,
    version: String(e.version),
    current_version: String(currentVersion),
    placed_at_unix_ms: String(e.placed_at_unix_ms),
    confirmed_at_unix_ms: String(e.confirmed_at_unix_ms),
  };
}

function requireVmId(v: unknown): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 256) throw new InvalidArgumentError('vm_id', 'must be a string of 1-256 characters');
  return v;
}

export function shadowService(deps: { vms: VmIpRegistry; shadows: ShadowManager; logger: Logger }): ServiceBinding {
  const kit = new HandlerKit(deps.logger);
  const readers = ['operator', 'coordinator'] as const;
  const wire = (e: ShadowEntry) => shadowEntryToWire(e, deps.vms.find(e.vm_id)?.version ?? 0);

  const handlers: grpc.UntypedServiceImplementation = {
    ReportLeaseChanges: kit.unary<Msg, Msg>('ReportLeaseChanges', ['agent'], async (req, ctx) => {
      const hostId = requireHostId('host_id', req.host_id);
      if (hostId !== ctx.peer.name) throw new PermissionDeniedError(`agent/${ctx.peer.name} may not report for host '${hostId}'`);
      const vms = (req.vms ?? []) as Msg[];
      if (vms.length > MAX_REPORTED_VMS) throw new InvalidArgumentError('vms', `at most ${MAX_REPORTED_VMS} per report`);
      const configs = vms.map((v, i) => {
        const c = parseVmIpConfig(v.config, `vms[${i}].config`);
        if (c.vm_id !== v.vm_id) throw new InvalidArgumentError(`vms[${i}].vm_id`, 'must equal config.vm_id');
        return c;
      });
      let accepted = 0;
      const refused: string[] = [];
      for (const c of configs) {
        const out = await deps.vms.report(hostId, c);
        if (out.accepted) accepted++;
        else refused.push(`${c.vm_id}: ${out.reason}`);
      }
      return { accepted, refused };
    }),
    ListVms: kit.unary<Msg, Msg>('ListVms', readers, async () => ({ vms: deps.vms.list().map(vmToWire) })),
    ListShadows: kit.unary<Msg, Msg>('ListShadows', readers, async (req) => ({ shadows: deps.shadows.list((req.vm_id as string) || undefined).map(wire) })),
    PlaceShadow: kit.unary<Msg, Msg>('PlaceShadow', ['operator'], async (req) => ({
      shadow: wire(await deps.shadows.place(requireVmId(req.vm_id), requireHostId('host_id', req.host_id))),
    })),
    RemoveShadow: kit.unary<Msg, Msg>('RemoveShadow', ['operator'], async (req) => {
      await deps.shadows.remove(requireVmId(req.vm_id), requireHostId('host_id', req.host_id));
      return {};
    }),
    RefreshShadows: kit.unary<Msg, Msg>('RefreshShadows', ['operator'], async () => deps.shadows.refresh() as unknown as Promise<Msg>),
  };
  return { name: SHADOW_SERVICE, handlers };
}

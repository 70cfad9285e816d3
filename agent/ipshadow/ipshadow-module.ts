// Agent module `ipshadow`: DHCP capture on VM-facing interfaces, lease reports of VMs active here,
// shadow IP configs of other hosts' VMs, and fenced IP activation (IpApplier) for the coordinator.
import { FailedPreconditionError, InvalidArgumentError, errorMessage } from '../../shared/errors';
import { callUnary } from '../../shared/grpc-client';
import { warmUpMessageCodecs } from '../../shared/proto';
import { Gauge } from 'prom-client';
import { AGENT_MODULE_NAMES, type AgentModuleDefinition, type ModuleHealth, type RunningAgentModule } from '../agent-module';
import { DhcpSniffer } from '../dhcp/dhcp-sniffer';
import { PcapCapture } from '../dhcp/pcap-capture';
import { captureHealthDetail, registerCaptureMetrics } from '../dhcp/dhcp-capture-report';
import type { LeaseChangeEvent } from '../dhcp/dhcp-lease-table';
import { FencingGuard } from '../net/fencing-guard';
import { GarpSender } from '../net/garp-sender';
import { IpApplier, type ApplyResult } from '../net/ip-applier';
import { createNetlinkTables } from '../net/netlink-tables';
import { activationSpecFor } from './activation-spec-builder';
import { ActiveSet } from './active-set';
import { isActivated } from './ip-state-probe';
import { type IpShadowAgentConfig, parseIpShadowAgentConfig } from './ipshadow-config';
import { IP_SHADOW_SERVICE, ipShadowService, type IpHandoff, type IpShadowOps } from './ipshadow-service';
import { LeaseReporter, type LeaseReportPort } from './lease-reporter';
import { ShadowStore, type ShadowRecord } from './shadow-store';
import { configToWire, type VmIpConfig } from '../../shared/vm-ip-config';
import { configFromLease } from './config-from-lease';
import { armedResumeWait, guestPausedWait, vmTapLookup } from './vm-tap-source';
import { HandoverDatagrams } from './handover-datagrams';
import { HandoverSource } from './handover-source';
import { PreparedHandovers, type HandoverPath } from './prepared-handovers';

export type RunningIpShadowModule = RunningAgentModule & {
  ipShadows(): ShadowRecord[];
  /** VM ids whose IP is active on this host. */
  ipActive(): string[];
};

/** "address=0.41 announce=0.12" (ms per applier step), for the activation/deactivation log lines. */
/** Wall-clock ms with sub-ms digits, for lining log lines up with packet captures. */
const wallMs = (): number => performance.timeOrigin + performance.now();
const stepsText = (r: ApplyResult): string => r.steps.map((s) => `${s.step}=${s.durationMs.toFixed(2)}`).join(' ');

/** Health's line on hand-over datagrams: where they are received, or why not (then HandOverIp alone). */
function handoverDatagramCapability(receiving: { bound?: string; error?: string } | undefined): { name: string; available: boolean; detail: string } {
  if (!receiving) return { name: 'handover-datagrams', available: false, detail: 'off (ipshadow.handover_datagrams: false): hand-overs by HandOverIp alone' };
  return receiving.bound
    ? { name: 'handover-datagrams', available: true, detail: `udp ${receiving.bound}` }
    : { name: 'handover-datagrams', available: false, detail: `${receiving.error ?? 'not bound'}: hand-overs to this host by HandOverIp alone` };
}

export const COORDINATOR_SHADOW_SERVICE = 'umbra.coordinator.v1.ShadowService';
const REPORT_DEADLINE_MS = 5000;

export const ipShadowAgentModule: AgentModuleDefinition<IpShadowAgentConfig> = {
  name: AGENT_MODULE_NAMES.ipshadow,
  parseConfig: parseIpShadowAgentConfig,
  async start(config, ctx): Promise<RunningIpShadowModule> {
    // The IP switch of a switchover and the lease report right after it: codecs built now, not then.
    warmUpMessageCodecs([IP_SHADOW_SERVICE, COORDINATOR_SHADOW_SERVICE]);
    const tables = createNetlinkTables();
    // Taps of the QEMUs the vm module runs here (shadow QEMUs have their own), before static config.
    const vmTap = vmTapLookup(ctx.modules);
    const guestPaused = guestPausedWait(ctx.modules);
    const armedResume = armedResumeWait(ctx.modules);
    const specFor = (cfg: VmIpConfig) => activationSpecFor(cfg, config, vmTap);
    const fencing = new FencingGuard(ctx.store);
    const applier = new IpApplier(tables, new GarpSender(), { announceCount: config.announceCount, announceIntervalMs: config.announceIntervalMs, fencing });
    const shadows = await ShadowStore.open(ctx.store);
    const active = await ActiveSet.open(ctx.store);
    const client = ctx.coordinatorClient(COORDINATOR_SHADOW_SERVICE);
    const port: LeaseReportPort = {
      report: async (configs) => {
        const res = await callUnary<{ refused: string[] }>(
          client,
          'ReportLeaseChanges',
          { host_id: ctx.hostId, vms: configs.map((c) => ({ vm_id: c.vm_id, config: configToWire(c) })) },
          REPORT_DEADLINE_MS,
        );
        return { refused: res.refused ?? [] };
      },
    };
    const reporter = await LeaseReporter.open(port, ctx.store, config.reportIntervalMs, ctx.reportError);
    const problems: string[] = [];
    let sniffer: DhcpSniffer | undefined;

    /** VMs whose DHCP this host reports: its configured VMs and those activated here. */
    const reportedVm = (mac: string): { vmId: string; mode: VmIpConfig['mode'] } | undefined => {
      const local = config.vms.find((v) => v.mac === mac);
      if (local) return { vmId: local.id, mode: local.mode ?? '' };
      const a = active.list().find((c) => c.mac === mac);
      return a ? { vmId: a.vm_id, mode: a.mode } : undefined;
    };
    const watchMacs = () => sniffer?.setWatchedMacs([...config.vms.map((v) => v.mac), ...active.list().map((c) => c.mac), ...shadows.list().map((s) => s.config.mac)]);
    const onLease = async (e: LeaseChangeEvent) => {
      const vm = reportedVm(e.mac);
      if (vm) await reporter.changed(configFromLease(vm.vmId, vm.mode, e.lease));
      const sniffed = configFromLease('', '', e.lease);
      await shadows.applySniffed(e.mac, sniffed);
    };

    if (config.captureInterfaces.length > 0) {
      sniffer = new DhcpSniffer({
        interfaces: config.captureInterfaces,
        watchedMacs: [],
        openCapture: (interfaceName, onFrame) => PcapCapture.open({ interfaceName, bufferBytes: config.captureBufferBytes }, onFrame),
      });
      watchMacs();
      sniffer.onLeaseChange((e) => onLease(e).catch((err) => ctx.reportError(`lease change of ${e.mac}: ${errorMessage(err)}`)));
      try {
        sniffer.start();
      } catch (err) {
        problems.push(`DHCP capture on ${config.captureInterfaces.join(', ')} failed: ${errorMessage(err)}`);
        ctx.reportError(problems[problems.length - 1]);
      }
    }

    // Bookkeeping after a (de)activation runs after the reply: the next step of a switchover (the
    // other host's activation) must not wait for our store writes. The kernel state is the truth
    // (GetIpState reads it), and the next operation on the VM waits for the previous bookkeeping.
    const bookkeeping = new Map<string, Promise<void>>();
    const afterApply = (vmId: string, work: () => Promise<void>) => {
      const p = (bookkeeping.get(vmId) ?? Promise.resolve())
        // setImmediate: the gRPC reply is written in this turn, before the store writes start.
        .then(() => new Promise<void>((resolve) => setImmediate(resolve)))
        .then(work)
        .catch((err) => ctx.reportError(`ip bookkeeping of ${vmId}: ${errorMessage(err)}`))
        .finally(() => {
          if (bookkeeping.get(vmId) === p) bookkeeping.delete(vmId);
        });
      bookkeeping.set(vmId, p);
    };

    const activateNow = async (cfg: VmIpConfig, token: number, receivedAt: number, via?: HandoverPath): Promise<ApplyResult> => {
      await bookkeeping.get(cfg.vm_id);
      const res = await applier.activate(specFor(cfg), { fencingToken: token });
      afterApply(cfg.vm_id, async () => {
        await active.put(cfg);
        await shadows.setActive(cfg.vm_id, true);
        watchMacs();
        await reporter.changed(cfg);
      });
      ctx.logger.info({ vmId: cfg.vm_id, address: cfg.address, token, totalMs: res.totalMs, steps: stepsText(res), receivedAt: receivedAt.toFixed(3), ...(via ? { handOverBy: via } : {}) }, 'ip activated');
      return res;
    };
    /** The path of a hand-over's activation up to the kernel (the spec, a netlink request and its answer); ms taken. */
    const rehearseHere = async (cfg: VmIpConfig, fromHost: string): Promise<number> => {
      const started = performance.now();
      const isActive = await isActivated(tables, specFor(cfg));
      const totalMs = performance.now() - started;
      ctx.logger.info({ vmId: cfg.vm_id, fromHost, active: isActive, totalMs }, 'hand-over rehearsed');
      return totalMs;
    };

    // Hand-overs: a switchover's activation called by the source agent right after its removal,
    // not by the coordinator. This host as destination (prepared ones, taken by datagram or call)
    // and as source (channels, rehearsal, the hand-over itself).
    const handovers = new PreparedHandovers({ armedResume, activate: activateNow });
    const datagrams = config.handoverDatagrams
      ? await HandoverDatagrams.open(ctx.listen, ctx.hostId, {
          prepared: (vmId) => handovers.prepared(vmId),
          take: (vmId, token, sourceHost) => {
            const e = handovers.prepared(vmId);
            if (!e) return Promise.reject(new FailedPreconditionError(`no hand-over of vm '${vmId}' was prepared here`));
            return handovers.take(e.config, token, sourceHost, wallMs(), 'datagram');
          },
          rehearse: async (vmId) => {
            const e = handovers.prepared(vmId);
            if (!e) throw new FailedPreconditionError(`no hand-over of vm '${vmId}' was prepared here`);
            await rehearseHere(e.config, e.sourceHost);
          },
        }, ctx.logger, ctx.metrics)
      : undefined;
    const handoverSource = new HandoverSource({ hostId: ctx.hostId, tls: ctx.tls, logger: ctx.logger, modules: ctx.modules, ...(datagrams ? { datagrams } : {}) });

    const ownPart = (h: IpHandoff | undefined, part: 'source' | 'either'): void => {
      if (!h) return;
      if (h.sourceHost === ctx.hostId || (part === 'either' && h.destinationHost === ctx.hostId)) return;
      throw new InvalidArgumentError(part === 'source' ? 'handoff.source_host' : 'handoff', `does not name this host '${ctx.hostId}'${part === 'source' ? ' as the source' : ''}`);
    };

    const ops: IpShadowOps = {
      async putShadow(sourceHost, cfg, version) {
        const res = await shadows.put(sourceHost, cfg, version);
        watchMacs();
        try {
          applier.prepare(specFor(res.record.config));
        } catch (err) {
          ctx.logger.warn({ vmId: cfg.vm_id, err: errorMessage(err) }, 'cannot prepare announcements for shadow');
        }
        ctx.logger.info({ vmId: cfg.vm_id, version, applied: res.applied, address: cfg.address }, 'shadow stored');
        return res;
      },
      async removeShadow(vmId) {
        const removed = await shadows.remove(vmId);
        watchMacs();
        return removed;
      },
      listShadows: () => shadows.list(),
      knownConfig: (vmId) => active.get(vmId) ?? shadows.get(vmId)?.config ?? reporter.get(vmId),
      async prepare(cfg, token, handoff) {
        ownPart(handoff, 'either');
        // Bookkeeping still running would otherwise delay the activation that follows.
        await bookkeeping.get(cfg.vm_id);
        const res = await applier.admit(specFor(cfg), { fencingToken: token });
        if (handoff?.destinationHost === ctx.hostId) handovers.expect(cfg, token, handoff.sourceHost, handoff.datagramKey);
        else if (handoff?.sourceHost === ctx.hostId) await handoverSource.prepare(handoff, cfg, token);
        return res;
      },
      async handOver(cfg, token, fromHost, rehearsal = false) {
        const receivedAt = wallMs();
        if (rehearsal) {
          handovers.forRehearsal(cfg.vm_id, fromHost);
          const totalMs = await rehearseHere(cfg, fromHost);
          return { vmId: cfg.vm_id, action: 'activate', changed: false, steps: [{ step: 'rehearsal', durationMs: totalMs, changed: false }], totalMs };
        }
        return handovers.take(cfg, token, fromHost, receivedAt, 'call');
      },
      async activate(cfg, token, receivedAt = wallMs()) {
        handovers.settle(cfg.vm_id);
        return activateNow(cfg, token, receivedAt);
      },
      async deactivate(cfg, token, handoff, afterGuestPausedMs) {
        ownPart(handoff, 'source');
        // A switchover sends this together with the source's switch-out: the address leaves once
        // the guest no longer answers (nothing is lost from then on), not before.
        if (afterGuestPausedMs) await guestPaused(cfg.vm_id, afterGuestPausedMs);
        handovers.settle(cfg.vm_id);
        await bookkeeping.get(cfg.vm_id);
        const handingOver = handoff?.sourceHost === ctx.hostId ? handoff : undefined;
        if (handingOver) await handoverSource.rehearsalDone(cfg.vm_id);
        const receivedAt = wallMs();
        const res = await applier.deactivate(specFor(cfg), { fencingToken: token });
        // The address is gone here: the destination takes it now, without a detour by the coordinator.
        const handOverStarted = performance.now();
        const handed = handingOver ? await handoverSource.handOver(handingOver, cfg, token) : undefined;
        const handOverMs = performance.now() - handOverStarted;
        afterApply(cfg.vm_id, async () => {
          await active.remove(cfg.vm_id);
          await shadows.setActive(cfg.vm_id, false);
          if (!config.vms.some((v) => v.id === cfg.vm_id)) await reporter.forget(cfg.vm_id);
          watchMacs();
        });
        ctx.logger.info({ vmId: cfg.vm_id, address: cfg.address, token, totalMs: res.totalMs, steps: stepsText(res), receivedAt: receivedAt.toFixed(3), ...(handed ? { handedOver: handed.handedOver, handOverBy: handed.handedOver ? (handed.datagram === 'answered' ? 'datagram' : 'call') : undefined, handOverDatagram: handed.datagram, handOverMs, handoffError: handed.error } : {}) }, 'ip deactivated');
        return handed ? { ...res, handoff: handed } : res;
      },
      async state(cfg) {
        return { active: await isActivated(tables, specFor(cfg)), fencingToken: (await fencing.current(cfg.vm_id)) ?? 0 };
      },
    };

    const malformed = new Gauge({
      name: 'umbra_agent_dhcp_malformed_frames',
      help: 'DHCP frames dropped as malformed, by reason',
      labelNames: ['reason'],
      registers: [ctx.metrics],
      collect() {
        for (const [reason, n] of Object.entries(sniffer?.stats().malformedByReason ?? {})) this.set({ reason }, n);
      },
    });
    const captureGauges = registerCaptureMetrics(ctx.metrics, () => sniffer?.stats().captures);
    const shadowGauge = new Gauge({ name: 'umbra_agent_ip_shadows', help: 'Shadow IP configs held', registers: [ctx.metrics], collect() { this.set(shadows.list().length); } });

    return {
      // For the agent's health view of shadows (agent/core/host-view.ts).
      ipShadows: () => shadows.list(),
      ipActive: () => active.list().map((c) => c.vm_id),
      services: [ipShadowService(ops, ctx.logger)],
      health(): ModuleHealth {
        const s = sniffer?.stats();
        const capture = config.captureInterfaces.length === 0
          ? { name: 'dhcp-capture', available: false, detail: 'no capture_interfaces configured' }
          : {
              name: 'dhcp-capture',
              available: problems.length === 0,
              detail: `${config.captureInterfaces.join(',')}: ${s?.decoded ?? 0} decoded, ${s?.malformed ?? 0} malformed (${Object.entries(s?.malformedByReason ?? {}).filter(([, n]) => n > 0).map(([r, n]) => `${r}=${n}`).join(' ') || 'none'}), ${s?.leaseEvents ?? 0} lease events, ${captureHealthDetail(s?.captures ?? {})}`,
            };
        const shadowList = shadows.list();
        return {
          problems: [...problems, ...(reporter.failures > 0 && reporter.lastError ? [`last lease report failed: ${reporter.lastError}`] : [])].slice(0, 5),
          capabilities: [
            capture,
            { name: 'ip-shadows', available: true, detail: shadowList.length === 0 ? 'none' : shadowList.map((r) => `${r.vm_id}@v${r.version}${r.active ? '(active)' : ''}`).join(', ') },
            { name: 'ip-active', available: true, detail: active.list().map((c) => `${c.vm_id}=${c.address}`).join(', ') || 'none' },
            handoverDatagramCapability(datagrams?.receiving),
          ],
        };
      },
      async close() {
        await Promise.all(bookkeeping.values());
        sniffer?.close();
        reporter.close();
        await applier.close();
        tables.close();
        datagrams?.close();
        client.close();
        handoverSource.close();
        void malformed;
        void shadowGauge;
        void captureGauges;
      },
    };
  },
};

// Agent module `ipshadow`: DHCP capture on VM-facing interfaces, lease reports of VMs active here,
// shadow IP configs of other hosts' VMs, and fenced IP activation (IpApplier) for the coordinator.
import { FailedPreconditionError, InvalidArgumentError, UnavailableError, errorMessage } from '../../shared/errors';
import { callUnary, dial, type GenericClient } from '../../shared/grpc-client';
import { channelCredentials } from '../../shared/tls';
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
import { IP_SHADOW_SERVICE, ipShadowService, type HandoffOutcome, type IpHandoff, type IpShadowOps, type WireApplyResult } from './ipshadow-service';
import { LeaseReporter, type LeaseReportPort } from './lease-reporter';
import { ShadowStore, type ShadowRecord } from './shadow-store';
import { configToWire, type VmIpConfig } from '../../shared/vm-ip-config';
import { configFromLease } from './config-from-lease';
import { armedResumeWait, guestPausedWait, vmTapLookup } from './vm-tap-source';
import { handOverPeerSource, keepPeersConnected } from './handover-peers';
import { HandoverDatagrams } from './handover-datagrams';

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
/** The destination's activation through a hand-over waits for its first announcement frame only. */
const HANDOVER_DEADLINE_MS = 3000;
/** A rehearsal the destination refuses (it is not prepared yet: both hosts are prepared at once) is tried again. */
const REHEARSAL_ATTEMPTS = 8;
const REHEARSAL_RETRY_MS = 25;
/** How long a hand-over's removal waits for its rehearsal still running (it normally takes a few ms). */
const REHEARSAL_WAIT_MS = 100;
/** How long a hand-over's activation waits for an armed resume of the VM here to see the device state loaded (it normally takes some ms). */
const HANDOVER_RESUME_WAIT_MS = 250;
/** How often the hand-over channels to the hosts this agent replicates memory to are checked (and redialed when down). */
const PEER_WARM_INTERVAL_MS = 2000;
/**
 * How long the source waits for the destination's answer to its hand-over datagram before it
 * calls HandOverIp anyway (the answer normally takes about a millisecond).
 */
const HANDOVER_DATAGRAM_WAIT_MS = 100;
/** A hand-over prepared but not called within this long is forgotten. */
const HANDOVER_EXPECTED_FOR_MS = 60_000;

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

    // Hand-overs (a switchover's activation called by the source agent, not the coordinator): the
    // ones this host was prepared to accept, and channels to destinations, dialled at prepare time
    // so the call after the removal finds its TLS connection up.
    const expectedHandovers = new Map<string, { sourceHost: string; token: number; untilMs: number; config: VmIpConfig; datagramKey?: Buffer }>();
    // Hand-overs taken by datagram, until the source's HandOverIp confirms them (it gets their
    // result) or the VM's next operation settles them.
    const handovers = new Map<string, { sourceHost: string; token: number; result: Promise<ApplyResult> }>();
    const settle = (vmId: string) => {
      expectedHandovers.delete(vmId);
      handovers.delete(vmId);
    };
    /** The source's rehearsals of hand-overs still running, by VM. */
    const rehearsals = new Map<string, Promise<void>>();
    /** Whether the destination answered a rehearsal datagram of each VM's prepared hand-over (absent: not known yet). */
    const datagramAnswered = new Map<string, boolean>();
    const peers = new Map<string, { endpoint: string; client: GenericClient }>();
    const peerClient = (h: IpHandoff): GenericClient => {
      const held = peers.get(h.destinationHost);
      if (held && held.endpoint === h.destinationEndpoint) return held.client;
      held?.client.close();
      const client = dial(IP_SHADOW_SERVICE, h.destinationEndpoint, channelCredentials(ctx.tls, { role: 'agent', name: h.destinationHost }));
      peers.set(h.destinationHost, { endpoint: h.destinationEndpoint, client });
      return client;
    };
    // Connecting (true) only when idle: a channel up stays as it is, a dropped one is dialed again.
    const warmPeers = keepPeersConnected(handOverPeerSource(ctx.modules), (p) => void peerClient({ sourceHost: ctx.hostId, destinationHost: p.hostId, destinationEndpoint: p.endpoint }).getChannel().getConnectivityState(true), PEER_WARM_INTERVAL_MS);
    const handOverTo = async (h: IpHandoff, cfg: VmIpConfig, token: number): Promise<HandoffOutcome> => {
      // The datagram first: the destination takes the address at once. The call that follows (after
      // its answer, so it does not compete with the activation for CPU) returns that activation's
      // result, or does the hand-over itself when the datagram was lost or not received there.
      // Only a destination that answered a rehearsal datagram of this hand-over gets one: for any
      // other (UDP blocked, no datagrams there, the rehearsal not done yet) waiting for an answer
      // would only add HANDOVER_DATAGRAM_WAIT_MS while no host holds the address.
      const skip = datagramAnswered.get(cfg.vm_id) !== true;
      const datagram: HandoffOutcome['datagram'] = !h.datagramKey || !datagrams ? undefined : skip ? 'skipped' : (await datagrams.handOver(h.destinationEndpoint, cfg.vm_id, token, h.datagramKey, HANDOVER_DATAGRAM_WAIT_MS)) ? 'answered' : 'unanswered';
      try {
        const destination = await callUnary<WireApplyResult>(peerClient(h), 'HandOverIp', { vm_id: cfg.vm_id, fencing_token: String(token), config: configToWire(cfg) }, HANDOVER_DEADLINE_MS);
        return { handedOver: true, destination, via: datagram === 'answered' ? 'datagram' : 'call', ...(datagram ? { datagram } : {}) };
      } catch (err) {
        return { handedOver: false, error: errorMessage(err) };
      }
    };

    /**
     * A prepared hand-over from `fromHost`, by datagram or HandOverIp, whichever comes first; the
     * other then gets the same result.
     */
    const handOverNow = (cfg: VmIpConfig, token: number, fromHost: string, receivedAt: number, via: 'datagram' | 'call'): Promise<ApplyResult> => {
      const byDatagram = handovers.get(cfg.vm_id);
      if (via === 'call' && byDatagram && byDatagram.sourceHost === fromHost && byDatagram.token === token) {
        // The source's confirmation of its datagram: answered once, like any hand-over.
        handovers.delete(cfg.vm_id);
        return byDatagram.result;
      }
      const e = expectedHandovers.get(cfg.vm_id);
      if (!e || e.sourceHost !== fromHost || e.token !== token || e.untilMs < Date.now()) {
        return Promise.reject(new FailedPreconditionError(`no hand-over of vm '${cfg.vm_id}' from '${fromHost}' with fencing token ${token} was prepared here`));
      }
      const result = (async () => {
        // In a VM switchover the hand-over comes while this host's shadow QEMU loads the device
        // state: the activation waits until that load is over (the guest is being resumed), so it
        // does not slow the load inside the guest's pause, and runs beside the resume.
        await armedResume(cfg.vm_id, HANDOVER_RESUME_WAIT_MS);
        if (expectedHandovers.get(cfg.vm_id) !== e) {
          throw new FailedPreconditionError(`the hand-over of vm '${cfg.vm_id}' from '${fromHost}' was settled by another operation while the guest was starting here`);
        }
        expectedHandovers.delete(cfg.vm_id);
        return activateNow(cfg, token, receivedAt, via);
      })();
      if (via === 'datagram') handovers.set(cfg.vm_id, { sourceHost: fromHost, token, result });
      return result;
    };
    /** The path of a hand-over's activation up to the kernel (the spec, a netlink request and its answer); ms taken. */
    const rehearseHere = async (cfg: VmIpConfig, fromHost: string): Promise<number> => {
      const started = performance.now();
      const active = await isActivated(tables, specFor(cfg));
      const totalMs = performance.now() - started;
      ctx.logger.info({ vmId: cfg.vm_id, fromHost, active, totalMs }, 'hand-over rehearsed');
      return totalMs;
    };
    const activateNow = async (cfg: VmIpConfig, token: number, receivedAt: number, via?: 'datagram' | 'call'): Promise<ApplyResult> => {
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
    const datagrams = config.handoverDatagrams
      ? await HandoverDatagrams.open(ctx.listen, ctx.hostId, {
          prepared: (vmId) => {
            const e = expectedHandovers.get(vmId);
            return e && e.untilMs >= Date.now() ? e : undefined;
          },
          take: (vmId, token, sourceHost) => {
            const e = expectedHandovers.get(vmId);
            if (!e) return Promise.reject(new FailedPreconditionError(`no hand-over of vm '${vmId}' was prepared here`));
            return handOverNow(e.config, token, sourceHost, wallMs(), 'datagram');
          },
          rehearse: async (vmId) => {
            const e = expectedHandovers.get(vmId);
            if (!e) throw new FailedPreconditionError(`no hand-over of vm '${vmId}' was prepared here`);
            await rehearseHere(e.config, e.sourceHost);
          },
        }, ctx.logger, ctx.metrics)
      : undefined;

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
        if (handoff?.destinationHost === ctx.hostId) {
          handovers.delete(cfg.vm_id);
          expectedHandovers.set(cfg.vm_id, { sourceHost: handoff.sourceHost, token, untilMs: Date.now() + HANDOVER_EXPECTED_FOR_MS, config: cfg, ...(handoff.datagramKey ? { datagramKey: handoff.datagramKey } : {}) });
        } else if (handoff?.sourceHost === ctx.hostId) {
          // The channel is up (TLS handshake done) before we answer, so no connection set-up falls
          // inside the hand-over. A source that cannot reach the destination fails its prepare,
          // and the coordinator does not ask it to hand over.
          const peer = peerClient(handoff);
          await new Promise<void>((resolve, reject) =>
            peer.waitForReady(Date.now() + HANDOVER_DEADLINE_MS, (err) =>
              err ? reject(new UnavailableError(`cannot reach ${handoff.destinationHost} at ${handoff.destinationEndpoint} for the hand-over: ${err.message}`, { cause: err })) : resolve(),
            ),
          );
          // Measured: the first hand-over of a run took ~9 ms from the source's call to the
          // destination's handler (~3 ms later on) and its activation ~3 ms (~0.6), first-use
          // costs on both agents while no host holds the address. The rehearsal pays them here,
          // after the answer (it took 30-40 ms on a loaded host, all of it in the command's time
          // to running): the switch itself comes later, once the source guest is paused.
          // The coordinator prepares both hosts at once: until the destination expects the hand-over
          // it refuses the rehearsal, which is tried again a few times. Best effort: a destination
          // that keeps refusing (e.g. an older agent) is still handed over.
          // With a datagram key the rehearsal is a datagram first: the path the switch will take,
          // at a fraction of the call's CPU on both agents. A destination that never answers it
          // (UDP blocked between the agents, an agent without datagrams) is handed over by the
          // call alone, at once, and the call is rehearsed instead.
          const key = handoff.datagramKey;
          datagramAnswered.delete(cfg.vm_id);
          const byCall = async () => {
            await callUnary(peer, 'HandOverIp', { vm_id: cfg.vm_id, fencing_token: '0', config: configToWire(cfg), rehearsal: true }, HANDOVER_DEADLINE_MS);
          };
          const attempts = async (once: () => Promise<void>, pauseMs: number): Promise<unknown> => {
            let lastErr: unknown;
            for (let attempt = 0; attempt < REHEARSAL_ATTEMPTS; attempt++) {
              if (attempt > 0 && pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
              try {
                await once();
                return undefined;
              } catch (err) {
                lastErr = err ?? new Error('refused');
              }
            }
            return lastErr;
          };
          const rehearsal = (async () => {
            if (key && datagrams) {
              // Each attempt waits REHEARSAL_RETRY_MS for the answer: no pause between them.
              const byDatagram = async () => {
                if (!(await datagrams.rehearse(handoff.destinationEndpoint, cfg.vm_id, token, key, REHEARSAL_RETRY_MS))) throw new UnavailableError('no answer');
              };
              const err = await attempts(byDatagram, 0);
              datagramAnswered.set(cfg.vm_id, err === undefined);
              if (err === undefined) return;
              ctx.logger.warn({ vmId: cfg.vm_id, destination: handoff.destinationHost, endpoint: handoff.destinationEndpoint }, 'hand-over datagrams unanswered (is UDP open between the agents?): this hand-over goes by HandOverIp alone');
            }
            const err = await attempts(byCall, REHEARSAL_RETRY_MS);
            if (err !== undefined) ctx.logger.info({ vmId: cfg.vm_id, destination: handoff.destinationHost, err: errorMessage(err) }, 'hand-over rehearsal refused');
          })().finally(() => {
            if (rehearsals.get(cfg.vm_id) === rehearsal) rehearsals.delete(cfg.vm_id);
          });
          rehearsals.set(cfg.vm_id, rehearsal);
        }
        return res;
      },
      async handOver(cfg, token, fromHost, rehearsal = false) {
        const receivedAt = wallMs();
        const e = expectedHandovers.get(cfg.vm_id);
        if (rehearsal) {
          if (!e || e.sourceHost !== fromHost || e.untilMs < Date.now()) throw new FailedPreconditionError(`no hand-over of vm '${cfg.vm_id}' from '${fromHost}' was prepared here`);
          const totalMs = await rehearseHere(cfg, fromHost);
          return { vmId: cfg.vm_id, action: 'activate', changed: false, steps: [{ step: 'rehearsal', durationMs: totalMs, changed: false }], totalMs };
        }
        return handOverNow(cfg, token, fromHost, receivedAt, 'call');
      },
      async activate(cfg, token, receivedAt = wallMs()) {
        // A hand-over expected here is settled by any (de)activation of the VM: one that arrives
        // later (a source stalled past the coordinator's rollback) is refused, not applied.
        settle(cfg.vm_id);
        return activateNow(cfg, token, receivedAt);
      },
      async deactivate(cfg, token, handoff, afterGuestPausedMs) {
        ownPart(handoff, 'source');
        // A switchover sends this together with the source's switch-out: the address leaves once
        // the guest no longer answers (nothing is lost from then on), not before.
        if (afterGuestPausedMs) await guestPaused(cfg.vm_id, afterGuestPausedMs);
        settle(cfg.vm_id);
        await bookkeeping.get(cfg.vm_id);
        // A rehearsal still running (an IP switch triggered right after its prepare) would take CPU
        // on both agents while no host holds the address: it ends first, while the address still
        // answers here (measured in the ip-switchover bench: it overlapped every switch).
        const rehearsal = handoff?.sourceHost === ctx.hostId ? rehearsals.get(cfg.vm_id) : undefined;
        if (rehearsal) await Promise.race([rehearsal, new Promise((r) => setTimeout(r, REHEARSAL_WAIT_MS).unref())]);
        const receivedAt = wallMs();
        const res = await applier.deactivate(specFor(cfg), { fencingToken: token });
        // The address is gone here: the destination takes it now, without a detour by the coordinator.
        const handOverStarted = performance.now();
        const handed = handoff?.sourceHost === ctx.hostId ? await handOverTo(handoff, cfg, token) : undefined;
        const handOverMs = performance.now() - handOverStarted;
        afterApply(cfg.vm_id, async () => {
          await active.remove(cfg.vm_id);
          await shadows.setActive(cfg.vm_id, false);
          if (!config.vms.some((v) => v.id === cfg.vm_id)) await reporter.forget(cfg.vm_id);
          watchMacs();
        });
        ctx.logger.info({ vmId: cfg.vm_id, address: cfg.address, token, totalMs: res.totalMs, steps: stepsText(res), receivedAt: receivedAt.toFixed(3), ...(handed ? { handedOver: handed.handedOver, handOverBy: handed.via, handOverDatagram: handed.datagram, handOverMs, handoffError: handed.error } : {}) }, 'ip deactivated');
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
        warmPeers.stop();
        for (const p of peers.values()) p.client.close();
        void malformed;
        void shadowGauge;
        void captureGauges;
      },
    };
  },
};

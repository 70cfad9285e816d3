// The source side of hand-overs: channels to destinations (kept connected to the hosts this agent
// replicates memory to, and made ready at prepare time), the rehearsal at prepare time, and the
// hand-over itself right after the removal: a datagram to a destination that answered one in the
// rehearsal, then the HandOverIp call that confirms it (or does the hand-over alone).
import type { Logger } from 'pino';
import { UnavailableError, errorMessage } from '../../shared/errors';
import { callUnary, dial, type GenericClient } from '../../shared/grpc-client';
import { channelCredentials, type TlsMaterial } from '../../shared/tls';
import { configToWire, type VmIpConfig } from '../../shared/vm-ip-config';
import type { RunningAgentModule } from '../agent-module';
import type { HandoverDatagrams } from './handover-datagrams';
import { handOverPeerSource, keepPeersConnected } from './handover-peers';
import { HANDOVER_RESUME_WAIT_MS } from './prepared-handovers';
import { IP_SHADOW_SERVICE, type HandoffOutcome, type IpHandoff, type WireApplyResult } from './ipshadow-service';

/** The destination's activation through a hand-over waits for its first announcement frame only. */
const HANDOVER_DEADLINE_MS = 3000;
/** A rehearsal the destination refuses (it is not prepared yet: both hosts are prepared at once) is tried again. */
const REHEARSAL_ATTEMPTS = 8;
const REHEARSAL_RETRY_MS = 25;
/** How long a hand-over's removal waits for its rehearsal still running (it normally takes a few ms). */
const REHEARSAL_WAIT_MS = 100;
/** How often the hand-over channels to the hosts this agent replicates memory to are checked (and redialed when down). */
const PEER_WARM_INTERVAL_MS = 2000;
/**
 * How long the source waits for the destination to accept its hand-over datagram before it calls
 * HandOverIp to do the hand-over (the answer normally takes about a millisecond).
 */
const HANDOVER_DATAGRAM_WAIT_MS = 100;
/**
 * How long, once accepted, it waits for the destination's activation before the confirming call
 * (which then waits for it there): above the destination's wait for the guest's device state.
 */
const HANDOVER_TAKEN_WAIT_MS = HANDOVER_RESUME_WAIT_MS + 150;

export interface HandoverSourceDeps {
  hostId: string;
  tls: TlsMaterial;
  logger: Logger;
  /** The running agent modules (the replication module names the hosts to keep channels to). */
  modules: ReadonlyMap<string, RunningAgentModule>;
  /** Hand-over datagrams, when on. */
  datagrams?: HandoverDatagrams;
}

export class HandoverSource {
  private readonly peers = new Map<string, { endpoint: string; client: GenericClient }>();
  private readonly warmPeers: { stop(): void };
  /** Rehearsals still running, by VM. */
  private readonly rehearsals = new Map<string, Promise<void>>();
  /** Whether the destination answered a rehearsal datagram of each VM's prepared hand-over (absent: not known yet). */
  private readonly datagramAnswered = new Map<string, boolean>();

  constructor(private readonly d: HandoverSourceDeps) {
    // Connecting (true) only when idle: a channel up stays as it is, a dropped one is dialed again.
    this.warmPeers = keepPeersConnected(
      handOverPeerSource(d.modules),
      (p) => void this.peerClient({ sourceHost: d.hostId, destinationHost: p.hostId, destinationEndpoint: p.endpoint }).getChannel().getConnectivityState(true),
      PEER_WARM_INTERVAL_MS,
    );
  }

  private peerClient(h: IpHandoff): GenericClient {
    const held = this.peers.get(h.destinationHost);
    if (held && held.endpoint === h.destinationEndpoint) return held.client;
    held?.client.close();
    const client = dial(IP_SHADOW_SERVICE, h.destinationEndpoint, channelCredentials(this.d.tls, { role: 'agent', name: h.destinationHost }));
    this.peers.set(h.destinationHost, { endpoint: h.destinationEndpoint, client });
    return client;
  }

  /**
   * PrepareIp named this host the source: the channel to the destination is up (TLS handshake
   * done) before this resolves, so no connection set-up falls inside the hand-over; a destination
   * that cannot be reached fails the prepare, and the coordinator does not ask for the hand-over.
   * The rehearsal starts after (see rehearse()).
   */
  async prepare(h: IpHandoff, config: VmIpConfig, token: number): Promise<void> {
    const peer = this.peerClient(h);
    await new Promise<void>((resolve, reject) =>
      peer.waitForReady(Date.now() + HANDOVER_DEADLINE_MS, (err) =>
        err ? reject(new UnavailableError(`cannot reach ${h.destinationHost} at ${h.destinationEndpoint} for the hand-over: ${err.message}`, { cause: err })) : resolve(),
      ),
    );
    const rehearsal = this.rehearse(h, config, token).finally(() => {
      if (this.rehearsals.get(config.vm_id) === rehearsal) this.rehearsals.delete(config.vm_id);
    });
    this.rehearsals.set(config.vm_id, rehearsal);
  }

  /**
   * Measured: the first hand-over of a run took ~9 ms from the source's call to the destination's
   * handler (~3 ms later on) and its activation ~3 ms (~0.6), first-use costs on both agents
   * while no host holds the address. The rehearsal pays them at prepare time, after the answer
   * (it took 30-40 ms on a loaded host, all of it in the command's time to running); the switch
   * itself comes later, once the source guest is paused. The coordinator prepares both hosts at
   * once: until the destination expects the hand-over it refuses the rehearsal, which is tried
   * again a few times. Best effort: a destination that keeps refusing is still handed over.
   * With a datagram key the rehearsal is a datagram first: the path the switch will take, at a
   * fraction of the call's CPU on both agents. A destination that never answers it (UDP blocked
   * between the agents, an agent without datagrams) is handed over by the call alone, at once,
   * and the call is rehearsed instead.
   */
  private async rehearse(h: IpHandoff, config: VmIpConfig, token: number): Promise<void> {
    const vmId = config.vm_id;
    this.datagramAnswered.delete(vmId);
    const { datagrams } = this.d;
    const key = h.datagramKey;
    if (key && datagrams) {
      // Each attempt waits REHEARSAL_RETRY_MS for the answer: no pause between them.
      const answered = await attempts(async () => datagrams.rehearse(h.destinationEndpoint, vmId, token, key, REHEARSAL_RETRY_MS), 0);
      this.datagramAnswered.set(vmId, answered.ok);
      if (answered.ok) return;
      this.d.logger.warn({ vmId, destination: h.destinationHost, endpoint: h.destinationEndpoint }, 'hand-over datagrams unanswered (is UDP open between the agents?): this hand-over goes by HandOverIp alone');
    }
    const peer = this.peerClient(h);
    const called = await attempts(async () => {
      await callUnary(peer, 'HandOverIp', { vm_id: vmId, fencing_token: '0', config: configToWire(config), rehearsal: true }, HANDOVER_DEADLINE_MS);
      return true;
    }, REHEARSAL_RETRY_MS);
    if (!called.ok) this.d.logger.info({ vmId, destination: h.destinationHost, err: called.error }, 'hand-over rehearsal refused');
  }

  /**
   * A rehearsal still running (an IP switch triggered right after its prepare) would take CPU on
   * both agents while no host holds the address: the removal waits for it (bounded) while the
   * address still answers here. Measured in the ip-switchover bench: it overlapped every switch.
   */
  async rehearsalDone(vmId: string): Promise<void> {
    const rehearsal = this.rehearsals.get(vmId);
    if (!rehearsal) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([rehearsal, new Promise<void>((resolve) => (timer = setTimeout(resolve, REHEARSAL_WAIT_MS)))]);
    clearTimeout(timer);
  }

  /**
   * Right after the removal: the datagram first, so the destination takes the address at once.
   * The call that follows (after its answer, so it does not compete with the activation for CPU)
   * returns that activation's result, or does the hand-over itself when the datagram was lost.
   * Only a destination that answered a rehearsal datagram of this hand-over gets one: for any
   * other (UDP blocked, no datagrams there, the rehearsal not done yet) waiting for an answer
   * would only add HANDOVER_DATAGRAM_WAIT_MS while no host holds the address.
   */
  async handOver(h: IpHandoff, config: VmIpConfig, token: number): Promise<HandoffOutcome> {
    const { datagrams } = this.d;
    let datagram: HandoffOutcome['datagram'];
    if (h.datagramKey && datagrams) {
      datagram = this.datagramAnswered.get(config.vm_id) !== true
        ? 'skipped'
        : (await datagrams.handOver(h.destinationEndpoint, config.vm_id, token, h.datagramKey, HANDOVER_DATAGRAM_WAIT_MS, HANDOVER_TAKEN_WAIT_MS)) ? 'answered' : 'unanswered';
    }
    try {
      const destination = await callUnary<WireApplyResult>(this.peerClient(h), 'HandOverIp', { vm_id: config.vm_id, fencing_token: String(token), config: configToWire(config) }, HANDOVER_DEADLINE_MS);
      return { handedOver: true, destination, ...(datagram ? { datagram } : {}) };
    } catch (err) {
      return { handedOver: false, error: errorMessage(err) };
    }
  }

  close(): void {
    this.warmPeers.stop();
    for (const p of this.peers.values()) p.client.close();
    this.peers.clear();
  }
}

/** Runs `once` up to REHEARSAL_ATTEMPTS times, `pauseMs` apart, until it resolves true. */
async function attempts(once: () => Promise<boolean>, pauseMs: number): Promise<{ ok: boolean; error?: string }> {
  let error = 'no answer';
  for (let attempt = 0; attempt < REHEARSAL_ATTEMPTS; attempt++) {
    if (attempt > 0 && pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    try {
      if (await once()) return { ok: true };
    } catch (err) {
      error = errorMessage(err);
    }
  }
  return { ok: false, error };
}

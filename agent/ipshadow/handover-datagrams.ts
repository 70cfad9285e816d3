// Both ends of the hand-over datagram (shared/handover-datagram.ts). The source sends "take" right
// after removing the address, waits briefly for the destination's "accepted", then for its
// "taken" (and "rehearse" at prepare time, answered "rehearsed" without any change). The destination acts only on a datagram
// that names a hand-over it was prepared for (VM, token, source) and carries that switchover's
// MAC, accepts it at once and answers again once its activation is out. Everything else is counted and dropped: a
// datagram never activates what the coordinator did not prepare, and never stops the agent.
import { Counter, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import { errorMessage } from '../../shared/errors';
import { decodeHandoverDatagram, encodeHandoverDatagram, MalformedHandoverDatagramError, type DecodedHandoverDatagram, type HandoverDatagramKind } from '../../shared/handover-datagram';
import { HandoverDatagramSocket, type DatagramPeer } from './handover-datagram-socket';
import type { PreparedHandover } from './prepared-handovers';


export interface HandoverDestination {
  /** The hand-over prepared here for `vmId`, if any (expired ones are not returned). */
  prepared(vmId: string): Pick<PreparedHandover, 'sourceHost' | 'token' | 'datagramKey'> | undefined;
  /** Activates the prepared hand-over; resolves once the first announcement is out. */
  take(vmId: string, token: number, sourceHost: string): Promise<unknown>;
  /** Runs the activation's path up to reading the kernel state; changes nothing. */
  rehearse(vmId: string): Promise<unknown>;
}

export type DatagramOutcome = 'taken' | 'refused' | 'malformed' | 'failed' | 'rehearsed' | 'early' | 'answered' | 'unanswered' | 'late';

const REFUSAL_LOG_INTERVAL_MS = 1000;
/** An activation not over by then is reported "accepted" first (well within the source's wait for it). */
const ACCEPT_AFTER_MS = 10;


export class HandoverDatagrams {
  private readonly pending = new Map<string, { key: Buffer; resolve: (answered: boolean) => void }>();
  private readonly counter: Counter<'outcome'>;
  private lastRefusalLogMs = -Infinity;
  private socket!: HandoverDatagramSocket;

  private constructor(
    private readonly hostId: string,
    private readonly destination: HandoverDestination,
    private readonly logger: Logger,
    metrics: Registry,
  ) {
    this.counter = new Counter({ name: 'umbra_agent_handover_datagrams_total', help: 'Hand-over datagrams by outcome: taken, refused, malformed, failed, rehearsed, early (a rehearsal before this host was prepared), here as destination; answered (accepted), unanswered, late (an answer nothing waits for), sent as source', labelNames: ['outcome'], registers: [metrics] });
  }

  static async open(listen: string, hostId: string, destination: HandoverDestination, logger: Logger, metrics: Registry): Promise<HandoverDatagrams> {
    const d = new HandoverDatagrams(hostId, destination, logger, metrics);
    d.socket = await HandoverDatagramSocket.open(listen, (m, from) => d.onMessage(m, from));
    if (d.socket.bindError) logger.warn({ err: d.socket.bindError }, 'hand-over datagrams are not received here; hand-overs to this host use HandOverIp alone');
    return d;
  }

  /** Where datagrams are received ("host:port"), or why not. */
  get receiving(): { bound?: string; error?: string } {
    return { bound: this.socket.bound, error: this.socket.bindError };
  }

  private count(outcome: DatagramOutcome): void {
    this.counter.inc({ outcome });
  }

  /**
   * Source side: sends "take" for `vmId` with `token` to `endpoint`. Resolves false when the
   * destination has not accepted it within `acceptMs` (lost, refused, not listening); else true once
   * its "taken" has come or `takenMs` has passed (an activation waiting for the guest's device
   * state there), whichever is first.
   */
  async handOver(endpoint: string, vmId: string, token: number, key: Buffer, acceptMs: number, takenMs: number): Promise<boolean> {
    const acceptedOnly = this.awaitAnswer('accepted', vmId, token, key, acceptMs);
    const taken = this.awaitAnswer('taken', vmId, token, key, takenMs);
    // A prompt activation is answered by "taken" alone (see onRequest).
    const accepted = { answered: Promise.race([acceptedOnly.answered, taken.answered.then((t) => t || acceptedOnly.answered)]), cancel: acceptedOnly.cancel };
    try {
      await this.socket.send(endpoint, encodeHandoverDatagram({ kind: 'take', vmId, fencingToken: token, sourceHost: this.hostId }, key));
    } catch (err) {
      this.logger.warn({ vmId, endpoint, err: errorMessage(err) }, 'hand-over datagram not sent');
      accepted.cancel();
      taken.cancel();
      this.count('unanswered');
      return false;
    }
    const ok = await accepted.answered;
    accepted.cancel();
    this.count(ok ? 'answered' : 'unanswered');
    if (ok) await taken.answered;
    taken.cancel();
    return ok;
  }

  /** Source side, at prepare time: sends "rehearse"; true when "rehearsed" comes within `waitMs`. The destination changes nothing. */
  async rehearse(endpoint: string, vmId: string, token: number, key: Buffer, waitMs: number): Promise<boolean> {
    const rehearsed = this.awaitAnswer('rehearsed', vmId, token, key, waitMs);
    try {
      await this.socket.send(endpoint, encodeHandoverDatagram({ kind: 'rehearse', vmId, fencingToken: token, sourceHost: this.hostId }, key));
    } catch (err) {
      this.logger.warn({ vmId, endpoint, err: errorMessage(err) }, 'hand-over rehearsal datagram not sent');
      rehearsed.cancel();
      return false;
    }
    return rehearsed.answered;
  }

  /** An answer of `kind` to expect (true) within `waitMs` (else false); cancel() settles it false. */
  private awaitAnswer(kind: HandoverDatagramKind, vmId: string, token: number, key: Buffer, waitMs: number): { answered: Promise<boolean>; cancel(): void } {
    const id = `${kind}/${vmId}/${token}`;
    let settle!: (answered: boolean) => void;
    const answered = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => settle(false), waitMs);
      settle = (v) => {
        clearTimeout(timer);
        if (this.pending.get(id)?.resolve === settle) this.pending.delete(id);
        resolve(v);
      };
      this.pending.set(id, { key, resolve: settle });
    });
    return { answered, cancel: () => settle(false) };
  }

  private onMessage(message: Buffer, from: DatagramPeer): void {
    let d: DecodedHandoverDatagram;
    try {
      d = decodeHandoverDatagram(message);
    } catch (err) {
      // Anything else thrown while reading arbitrary bytes is as malformed, not the agent's end.
      this.count('malformed');
      this.logger.debug({ from: `${from.address}:${from.port}`, err: errorMessage(err), ...(err instanceof MalformedHandoverDatagramError ? { reason: err.code } : {}) }, 'hand-over datagram dropped');
      return;
    }
    if (d.kind === 'take' || d.kind === 'rehearse') this.onRequest(d, d.kind, from);
    else this.onAnswer(d);
  }

  private onAnswer(d: DecodedHandoverDatagram): void {
    const p = this.pending.get(`${d.kind}/${d.vmId}/${d.fencingToken}`);
    if (!p) {
      // Nothing waits for it (any more): a "taken" after its wait ran out, or a stray datagram.
      this.count('late');
      return;
    }
    if (d.sourceHost !== this.hostId || !d.verify(p.key)) {
      this.count('refused');
      return;
    }
    p.resolve(true);
  }

  private onRequest(d: DecodedHandoverDatagram, kind: 'take' | 'rehearse', from: DatagramPeer): void {
    const prepared = this.destination.prepared(d.vmId);
    const key = prepared?.datagramKey;
    if (!prepared || !key || prepared.sourceHost !== d.sourceHost || prepared.token !== d.fencingToken || !d.verify(key)) {
      const fields = { vmId: d.vmId, token: d.fencingToken, claimedSource: d.sourceHost, from: `${from.address}:${from.port}` };
      if (kind === 'rehearse' && !prepared) {
        // The coordinator prepares both hosts at once: a source's rehearsal may come first.
        this.count('early');
        this.logger.debug(fields, 'hand-over rehearsal datagram before the prepare');
      } else {
        this.count('refused');
        // A flood of forged datagrams is counted in full but logged at most once a second.
        const now = Date.now();
        if (now - this.lastRefusalLogMs >= REFUSAL_LOG_INTERVAL_MS) {
          this.lastRefusalLogMs = now;
          this.logger.warn({ ...fields, kind }, 'hand-over datagram refused: no such hand-over prepared here, or a wrong MAC');
        }
      }
      return;
    }
    const answer = (answerKind: HandoverDatagramKind) => this.socket.sendTo(from, encodeHandoverDatagram({ kind: answerKind, vmId: d.vmId, fencingToken: d.fencingToken, sourceHost: d.sourceHost }, key)).catch(() => undefined);
    const work = kind === 'take' ? this.destination.take(d.vmId, d.fencingToken, d.sourceHost) : this.destination.rehearse(d.vmId);
    // The hand-over is registered here by now. An activation that waits (for the guest's device
    // state) tells the source so with "accepted"; a prompt one with "taken" alone, without an
    // extra datagram waking the source while this host activates.
    const accepting = kind === 'take' ? setTimeout(() => void answer('accepted'), ACCEPT_AFTER_MS) : undefined;
    work.then(() => {
      clearTimeout(accepting);
      this.count(kind === 'take' ? 'taken' : 'rehearsed');
      return answer(kind === 'take' ? 'taken' : 'rehearsed');
    }, (err) => {
      clearTimeout(accepting);
      // Registered, then failed: the source's call comes at once and gets the failure.
      if (kind === 'take') void answer('accepted');
      // A failed take: the source's HandOverIp that follows gets the same error, and the
      // coordinator falls back. A failed rehearsal is only a colder switch.
      this.count('failed');
      this.logger.warn({ vmId: d.vmId, token: d.fencingToken, kind, err: errorMessage(err) }, 'hand-over datagram failed');
    });
  }

  close(): void {
    for (const p of this.pending.values()) p.resolve(false);
    this.socket.close();
  }
}

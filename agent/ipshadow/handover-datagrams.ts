// Both ends of the hand-over datagram (shared/handover-datagram.ts). The source sends "take" right
// after removing the address and waits briefly for the destination's "taken" (and "rehearse" at
// prepare time, answered "rehearsed" without any change). The destination acts only on a datagram
// that names a hand-over it was prepared for (VM, token, source) and carries that switchover's
// MAC, then answers once its activation is out. Everything else is counted and dropped: a
// datagram never activates what the coordinator did not prepare, and never stops the agent.
import { Counter, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import { errorMessage } from '../../shared/errors';
import { decodeHandoverDatagram, encodeHandoverDatagram, MalformedHandoverDatagramError, type DecodedHandoverDatagram } from '../../shared/handover-datagram';
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

export type DatagramOutcome = 'taken' | 'refused' | 'malformed' | 'failed' | 'rehearsed' | 'early' | 'answered' | 'unanswered';

const REFUSAL_LOG_INTERVAL_MS = 1000;

const ANSWER: Record<'take' | 'rehearse', 'taken' | 'rehearsed'> = { take: 'taken', rehearse: 'rehearsed' };

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
    this.counter = new Counter({ name: 'umbra_agent_handover_datagrams_total', help: 'Hand-over datagrams by outcome: taken, refused, malformed, failed, rehearsed, early (a rehearsal before this host was prepared), here as destination; answered, unanswered, sent as source', labelNames: ['outcome'], registers: [metrics] });
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
   * Source side: sends "take" for `vmId` with `token` to `endpoint` and resolves true when the
   * destination's "taken" arrives within `waitMs`, false otherwise (lost, refused, not listening).
   */
  handOver(endpoint: string, vmId: string, token: number, key: Buffer, waitMs: number): Promise<boolean> {
    return this.exchange('take', endpoint, vmId, token, key, waitMs);
  }

  /** Source side, at prepare time: as handOver() with "rehearse"; the destination changes nothing. */
  rehearse(endpoint: string, vmId: string, token: number, key: Buffer, waitMs: number): Promise<boolean> {
    return this.exchange('rehearse', endpoint, vmId, token, key, waitMs);
  }

  private async exchange(kind: 'take' | 'rehearse', endpoint: string, vmId: string, token: number, key: Buffer, waitMs: number): Promise<boolean> {
    const id = `${ANSWER[kind]}/${vmId}/${token}`;
    let timer: NodeJS.Timeout | undefined;
    const answered = new Promise<boolean>((resolve) => {
      this.pending.set(id, { key, resolve });
      timer = setTimeout(() => resolve(false), waitMs);
    });
    try {
      await this.socket.send(endpoint, encodeHandoverDatagram({ kind, vmId, fencingToken: token, sourceHost: this.hostId }, key));
      const ok = await answered;
      if (kind === 'take') this.count(ok ? 'answered' : 'unanswered');
      return ok;
    } catch (err) {
      this.logger.warn({ vmId, endpoint, kind, err: errorMessage(err) }, 'hand-over datagram not sent');
      if (kind === 'take') this.count('unanswered');
      return false;
    } finally {
      clearTimeout(timer);
      this.pending.delete(id);
    }
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
    if (d.kind === 'taken' || d.kind === 'rehearsed') this.onAnswer(d);
    else this.onRequest(d, d.kind, from);
  }

  private onAnswer(d: DecodedHandoverDatagram): void {
    const p = this.pending.get(`${d.kind}/${d.vmId}/${d.fencingToken}`);
    if (!p || d.sourceHost !== this.hostId || !d.verify(p.key)) {
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
    const answer = () => this.socket.sendTo(from, encodeHandoverDatagram({ kind: ANSWER[kind], vmId: d.vmId, fencingToken: d.fencingToken, sourceHost: d.sourceHost }, key)).catch(() => undefined);
    const work = kind === 'take' ? this.destination.take(d.vmId, d.fencingToken, d.sourceHost) : this.destination.rehearse(d.vmId);
    work.then(() => {
      this.count(kind === 'take' ? 'taken' : 'rehearsed');
      return answer();
    }, (err) => {
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

// Keeps the agent registered with the coordinator: register, stream heartbeats, and on any
// failure retry with backoff, so a restarted coordinator sees the agent again within seconds.
import type { Logger } from 'pino';
import { errorMessage } from '../../shared/errors';
import type { HostFacts, HostUsage } from '../../shared/host-types';
import { Backoff } from './backoff';

export interface HeartbeatStream {
  send(usage: HostUsage, sequence: number): void;
  /** Resolves or rejects when the stream ends, for whatever reason. */
  closed: Promise<void>;
  cancel(): void;
}

/** The port to the coordinator (grpc in production, a fake in tests). */
export interface CoordinatorPort {
  register(facts: HostFacts): Promise<{ heartbeatIntervalMs: number }>;
  openHeartbeats(hostId: string): HeartbeatStream;
}

export type LinkState = 'COORDINATOR_LINK_STATE_CONNECTING' | 'COORDINATOR_LINK_STATE_CONNECTED' | 'COORDINATOR_LINK_STATE_RETRYING';

export interface LinkStatus {
  state: LinkState;
  connectedSinceMs: number;
  lastHeartbeatMs: number;
  lastError: string;
  attempts: number;
}

export class CoordinatorLink {
  private status: LinkStatus = { state: 'COORDINATOR_LINK_STATE_CONNECTING', connectedSinceMs: 0, lastHeartbeatMs: 0, lastError: '', attempts: 0 };
  private stopped = false;
  private stream?: HeartbeatStream;
  private timer?: NodeJS.Timeout;
  private wake?: () => void;
  private readonly backoff = new Backoff();

  constructor(
    private readonly port: CoordinatorPort,
    private readonly facts: () => HostFacts,
    private readonly usage: () => HostUsage,
    private readonly defaultIntervalMs: number,
    private readonly logger: Logger,
    private readonly onError: (message: string) => void = () => undefined,
  ) {}

  get current(): LinkStatus {
    return { ...this.status };
  }

  start(): void {
    void this.loop();
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      try {
        this.status.attempts++;
        const facts = this.facts();
        const { heartbeatIntervalMs } = await this.port.register(facts);
        if (this.stopped) return;
        this.backoff.reset();
        this.status = { ...this.status, state: 'COORDINATOR_LINK_STATE_CONNECTED', connectedSinceMs: Date.now(), lastError: '' };
        this.logger.info({ hostId: facts.host_id }, 'registered with coordinator');
        await this.heartbeat(facts.host_id, heartbeatIntervalMs || this.defaultIntervalMs);
        if (!this.stopped) throw new Error('heartbeat stream ended');
      } catch (err) {
        if (this.stopped) return;
        const message = errorMessage(err);
        const delayMs = this.backoff.next();
        this.status = { ...this.status, state: 'COORDINATOR_LINK_STATE_RETRYING', lastError: message };
        this.logger.warn({ err: message, retryInMs: delayMs }, 'coordinator link down');
        this.onError(`coordinator: ${message}`);
        await this.sleep(delayMs);
      }
    }
  }

  private async heartbeat(hostId: string, intervalMs: number): Promise<void> {
    const stream = this.port.openHeartbeats(hostId);
    this.stream = stream;
    let sequence = 0;
    const beat = () => {
      try {
        stream.send(this.usage(), ++sequence);
        this.status.lastHeartbeatMs = Date.now();
      } catch (err) {
        stream.cancel();
        this.logger.warn({ err: errorMessage(err) }, 'heartbeat send failed');
      }
    };
    beat();
    this.timer = setInterval(beat, intervalMs);
    this.timer.unref();
    try {
      await stream.closed;
    } finally {
      clearInterval(this.timer);
      this.stream = undefined;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      t.unref();
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  close(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.stream?.cancel();
    this.wake?.();
  }
}

// Delivers profiler batches to the coordinator in order: a bounded queue (the oldest batch is
// dropped, and counted, when the coordinator stays away), one send at a time, retries with
// exponential backoff. The transport is a port (PredictionService.ReportTelemetry in production).

import { errorMessage } from '../../shared/errors';

export const INITIAL_RETRY_MS = 1_000;
export const MAX_RETRY_MS = 30_000;

export interface TelemetryPort<B> {
  send(batch: B): Promise<void>;
}

export interface SenderStats {
  sent: number;
  failures: number;
  dropped: number;
  queued: number;
  lastError: string;
  lastSentMs: number;
}

export class TelemetrySender<B> {
  private readonly queue: B[] = [];
  private sending = false;
  private retryMs = INITIAL_RETRY_MS;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private idle: Promise<void> = Promise.resolve();
  private readonly s: SenderStats = { sent: 0, failures: 0, dropped: 0, queued: 0, lastError: '', lastSentMs: 0 };

  constructor(
    private readonly port: TelemetryPort<B>,
    private readonly maxQueued: number,
    private readonly options: { initialRetryMs?: number; maxRetryMs?: number; now?: () => number } = {},
  ) {
    this.retryMs = options.initialRetryMs ?? INITIAL_RETRY_MS;
  }

  stats(): SenderStats {
    return { ...this.s, queued: this.queue.length };
  }

  enqueue(batch: B): void {
    if (this.closed) return;
    this.queue.push(batch);
    while (this.queue.length > this.maxQueued) {
      this.queue.shift();
      this.s.dropped++;
    }
    if (!this.timer) this.kick();
  }

  private kick(): void {
    if (this.sending || this.closed) return;
    this.sending = true;
    this.idle = this.drain().finally(() => {
      this.sending = false;
      // A batch queued while the last send was finishing.
      if (this.queue.length > 0 && !this.timer) this.kick();
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0 && !this.closed) {
      const batch = this.queue[0];
      try {
        await this.port.send(batch);
        if (this.queue[0] === batch) this.queue.shift();
        this.s.sent++;
        this.s.lastSentMs = (this.options.now ?? Date.now)();
        this.retryMs = this.options.initialRetryMs ?? INITIAL_RETRY_MS;
      } catch (err) {
        this.s.failures++;
        this.s.lastError = errorMessage(err);
        const wait = this.retryMs;
        this.retryMs = Math.min(this.options.maxRetryMs ?? MAX_RETRY_MS, this.retryMs * 2);
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.kick();
        }, wait);
        this.timer.unref();
        return;
      }
    }
  }

  /** Waits for the send in flight (tests and close). */
  async flushed(): Promise<void> {
    await this.idle;
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

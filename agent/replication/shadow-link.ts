// The source's link to one shadow: what the shadow is owed (pages not yet sent), what is in flight
// (sent, not acknowledged), its acknowledged epoch, and the ordered send queue with back-pressure.
// Reconnects with backoff; on reconnect it resumes from the epoch the shadow reports.
import type { Logger } from 'pino';
import type { ImageDigest } from './image-digest';
import { PageSet } from './page-set';
import type { ShadowChannel, ShadowChannelEvent, ShadowChannelFactory } from './shadow-channel';
import type { OpenReplication, ShadowErrorCode } from './replication-receiver';

/**
 * Unacknowledged page bytes before a shadow sits rounds out (its pages stay owed and coalesce).
 * A final flush waits behind everything in flight: with 256 MiB a heavy 1 GiB guest's flush waited
 * seconds for the shadow to apply a backlog of rewrites of the same pages; 32 MiB bounds that.
 */
export const DEFAULT_WINDOW_BYTES = 32 * 1024 * 1024;
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5000;
/** Frames the transport may hold beyond its own buffer limit before the link waits for 'drain'. */
const TRANSPORT_AHEAD_FRAMES = 4;
/** After a disk-full or I/O error on the shadow, wait this long before trying again. */
const SHADOW_ERROR_RETRY_MS = 10000;

/** `comparing`: the shadow sent the digest of the image it holds; the source compares its RAM. */
export type ShadowLinkState = 'connecting' | 'comparing' | 'streaming' | 'backoff' | 'shadow-error' | 'closed';

/** A frame sent or queued: kept (without its bytes once sent) until its epoch is acknowledged. */
interface Pending {
  epoch: number;
  index: number;
  last: boolean;
  pages: Uint32Array;
  buf?: Buffer;
  sent: boolean;
}

/** Rebuilds a frame from current guest memory (for a resend after a refused frame). */
export type FrameEncoder = (epoch: number, index: number, last: boolean, pages: Uint32Array) => Buffer;

export interface ShadowLinkStatus {
  id: string;
  state: ShadowLinkState;
  ackedEpoch: number;
  /** Bytes written in the guest and not yet acknowledged by this shadow. */
  lagBytes: number;
  framesSent: number;
  framesResent: number;
  bytesSent: number;
  reconnects: number;
  fullResends: number;
  /** Times this shadow's image was declared invalid (resync()). */
  resyncs: number;
  /** Full resends served from the shadow's digest (only differing blocks owed), and the pages they spared. */
  digestResends: number;
  digestSparedPages: number;
  /** A discard was asked for and the shadow has not confirmed it yet. */
  resyncPending: boolean;
  lastError?: string;
  shadowError?: ShadowErrorCode;
}

export interface ShadowLinkOptions {
  id: string;
  factory: ShadowChannelFactory;
  open: OpenReplication;
  pageCount: number;
  windowBytes?: number;
  encode: FrameEncoder;
  /** The transport wrote a frame given to enqueue() or made by `encode` (its memory may be reused). */
  written?: (frame: Buffer) => void;
  /** Called on every state change or acknowledgement (the source re-evaluates flush and pacing). */
  notify: () => void;
  /**
   * The pages of the source's RAM whose blocks differ from the shadow's digest. Without it a
   * digest is ignored (every page is owed).
   */
  compareImage?: (theirs: ImageDigest) => Promise<Uint32Array>;
  log: Logger;
}

export class ShadowLink {
  readonly id: string;
  state: ShadowLinkState = 'connecting';
  ackedEpoch = 0;
  private readonly owed: PageSet;
  private pending: Pending[] = [];
  private queue: Pending[] = [];
  private channel: ShadowChannel | undefined;
  private pumping = false;
  /** Frames handed to the transport since it last accepted one without asking to wait. */
  private overfull = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private backoffMs = BACKOFF_MIN_MS;
  private readonly windowBytes: number;
  private readonly queueWaiters: Array<() => void> = [];
  private readonly stats = { framesSent: 0, framesResent: 0, bytesSent: 0, reconnects: 0, fullResends: 0, resyncs: 0, digestResends: 0, digestSparedPages: 0 };
  /** The next open asks the shadow to discard its image state (until it answers full_resend). */
  private discardPending = false;
  private lastError: string | undefined;
  private shadowError: ShadowErrorCode | undefined;

  constructor(private readonly o: ShadowLinkOptions) {
    this.id = o.id;
    this.owed = new PageSet(o.pageCount);
    this.owed.addAll(); // a new shadow needs every page
    this.windowBytes = o.windowBytes ?? DEFAULT_WINDOW_BYTES;
  }

  connect(): void {
    if (this.state === 'closed') return;
    this.state = 'connecting';
    let ch: ShadowChannel | undefined;
    const onEvent = (e: ShadowChannelEvent) => {
      if (this.channel !== ch) return; // an older stream's late event
      this.onEvent(e);
    };
    ch = this.o.factory(this.discardPending ? { ...this.o.open, discardImage: true } : this.o.open, onEvent);
    this.channel = ch;
  }

  /**
   * The shadow's image is invalid (e.g. a guest ran on it during a rolled-back switchover): ends
   * the stream and reopens it asking the shadow to forget its persisted epoch, and owes it every
   * page again. Nothing it acknowledged before counts any more.
   */
  resync(reason: string): void {
    if (this.state === 'closed') return;
    this.stats.resyncs++;
    this.discardPending = true;
    this.lastError = `image declared invalid: ${reason}`;
    this.o.log.warn({ shadow: this.id, reason }, 'shadow image declared invalid; discarding its state and sending what differs from the source');
    this.ackedEpoch = 0;
    this.pending = [];
    this.owed.addAll();
    this.drop(0, 'backoff');
    this.o.notify();
  }

  /** Pages dirtied in a round: owed to this shadow until acknowledged. */
  addDirty(pages: Uint32Array): void {
    this.owed.add(pages);
  }

  /**
   * Whether this shadow takes part in the next round (connected, window not exceeded). A flush
   * ignores the window: everything must go now, and sitting out would only add a round trip.
   */
  canSend(ignoreWindow = false): boolean {
    return this.state === 'streaming' && (ignoreWindow || this.unackedPages() * this.o.open.pageSizeBytes < this.windowBytes);
  }

  takeOwed(): Uint32Array {
    return this.owed.take();
  }

  /** Queues a frame of `epoch` (frames of an epoch must be queued in index order). */
  enqueue(epoch: number, index: number, last: boolean, pages: Uint32Array, buf: Buffer): void {
    const p: Pending = { epoch, index, last, pages, buf, sent: false };
    this.pending.push(p);
    if (this.state === 'streaming') {
      this.queue.push(p);
      this.pump();
    }
  }

  /** Resolves once at most `n` frames wait in the queue (or the link is not streaming). */
  async queueBelow(n: number): Promise<void> {
    while (this.state === 'streaming' && this.queue.length > n) {
      await new Promise<void>((resolve) => this.queueWaiters.push(resolve));
    }
  }

  /** Frames queued or sent and not yet acknowledged. */
  unacknowledged(): boolean {
    return this.pending.length > 0;
  }

  /** Nothing waits to be handed to the transport (every queued frame was sent). */
  idle(): boolean {
    return this.queue.length === 0 && !this.pumping;
  }

  /** Whether an epoch's frames were queued to this shadow. */
  hasEpoch(epoch: number): boolean {
    return this.ackedEpoch >= epoch || this.pending.some((p) => p.epoch === epoch);
  }

  lagBytes(): number {
    // While comparing, what the shadow lacks is not known yet: all of it, for readiness checks.
    if (this.state === 'comparing') return this.o.pageCount * this.o.open.pageSizeBytes;
    return (this.owed.size + this.unackedPages()) * this.o.open.pageSizeBytes;
  }

  status(): ShadowLinkStatus {
    return {
      id: this.id,
      state: this.state,
      ackedEpoch: this.ackedEpoch,
      lagBytes: this.lagBytes(),
      ...this.stats,
      resyncPending: this.discardPending,
      lastError: this.lastError,
      shadowError: this.shadowError,
    };
  }

  close(): void {
    this.state = 'closed';
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.channel?.close();
    this.channel = undefined;
    this.wakeQueueWaiters();
  }

  private unackedPages(): number {
    let n = 0;
    for (const p of this.pending) n += p.pages.length;
    return n;
  }

  private onEvent(e: ShadowChannelEvent): void {
    switch (e.kind) {
      case 'ready':
        this.onReady(e.resumeFromEpoch, e.fullResend, e.digest);
        break;
      case 'ack':
        if (e.epoch > this.ackedEpoch) this.ackedEpoch = e.epoch;
        this.pending = this.pending.filter((p) => p.epoch > e.epoch);
        this.backoffMs = BACKOFF_MIN_MS;
        break;
      case 'reject':
        this.onReject(e.epoch, e.index, e.detail);
        break;
      case 'error':
        this.shadowError = e.code;
        this.lastError = e.detail;
        this.o.log.warn({ shadow: this.id, code: e.code, detail: e.detail }, 'shadow reported an error; retrying later');
        this.drop(SHADOW_ERROR_RETRY_MS, 'shadow-error');
        break;
      case 'closed':
        this.lastError = e.reason;
        this.drop(this.backoffMs, 'backoff');
        this.backoffMs = Math.min(BACKOFF_MAX_MS, this.backoffMs * 2);
        break;
    }
    this.o.notify();
  }

  private onReady(resume: number, full: boolean, digest?: ImageDigest): void {
    const discarding = this.discardPending;
    if (discarding && full) this.discardPending = false; // the shadow forgot its epoch: confirmed
    if (discarding) resume = 0; // whatever it says, its image is not trusted until a full copy is acknowledged
    // A discarded image too: the digest describes what it holds now, whatever wrote it.
    if (full && digest && this.o.compareImage) {
      this.compare(digest);
      return;
    }
    if (full || discarding || resume < this.ackedEpoch) {
      // The shadow lost (or never had) the image, or went back before what it acknowledged.
      if (this.ackedEpoch > 0 || this.stats.reconnects > 0) this.stats.fullResends++;
      this.owed.addAll();
    } else {
      for (const p of this.pending) if (p.epoch > resume) this.owed.add(p.pages);
    }
    this.ackedEpoch = resume;
    this.pending = [];
    this.queue = [];
    this.state = 'streaming';
    this.shadowError = undefined;
  }

  /**
   * A full resend to a shadow that holds an image already: it owes only the blocks that differ
   * from the source's RAM. What was owed is dropped first: every write before now is in the RAM
   * the comparison reads, and every write after it is reported by the tracker in a later round
   * (addDirty, which adds in any state). The link sends nothing until the comparison is in, so
   * no epoch is acknowledged as complete without those blocks; a comparison that fails owes every
   * page, one overtaken by a reconnect is dropped.
   */
  private compare(digest: ImageDigest): void {
    if (this.ackedEpoch > 0 || this.stats.reconnects > 0) this.stats.fullResends++;
    this.ackedEpoch = 0;
    this.pending = [];
    this.queue = [];
    this.owed.clear();
    this.state = 'comparing';
    this.shadowError = undefined;
    const channel = this.channel;
    const t0 = performance.now();
    const settle = (pages: Uint32Array | undefined, err?: unknown) => {
      if (this.channel !== channel || this.state !== 'comparing') return;
      if (pages) {
        this.owed.add(pages);
        this.stats.digestResends++;
        this.stats.digestSparedPages += this.o.pageCount - pages.length;
        this.o.log.info({ shadow: this.id, owedPages: pages.length, sparedPages: this.o.pageCount - pages.length, ms: Math.round(performance.now() - t0) }, 'shadow image compared: owes only the blocks that differ');
      } else {
        this.owed.addAll();
        this.o.log.warn({ shadow: this.id, err: err instanceof Error ? err.message : String(err) }, 'comparing the shadow image failed; sending a full copy');
      }
      this.state = 'streaming';
      this.o.notify();
    };
    this.o.compareImage!(digest).then(
      (pages) => settle(pages),
      (err: unknown) => settle(undefined, err),
    );
  }

  private onReject(epoch: number, index: number, detail: string): void {
    this.lastError = detail;
    const from = this.pending.findIndex((p) => p.epoch > epoch || (p.epoch === epoch && p.index >= index));
    if (from < 0 || this.pending[from].epoch !== epoch || this.pending[from].index !== index) {
      // Not a frame we can resend in place (e.g. refused the stream's first frame): start over.
      this.drop(BACKOFF_MIN_MS, 'backoff');
      return;
    }
    this.o.log.warn({ shadow: this.id, epoch, index, detail }, 'frame refused by shadow; resending');
    this.queue = this.pending.slice(from);
    for (const p of this.queue) {
      if (p.sent) {
        p.buf = undefined; // rebuilt from current memory: same pages, content at least as new
        this.stats.framesResent++;
      }
      p.sent = false;
    }
    this.pump();
  }

  /** Ends the current stream; unacknowledged frames stay pending until the shadow says where it is. */
  private drop(retryMs: number, state: ShadowLinkState): void {
    this.channel?.close();
    this.channel = undefined;
    this.queue = [];
    if (this.state === 'closed') return;
    this.state = state;
    this.wakeQueueWaiters();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.stats.reconnects++;
      this.connect();
    }, retryMs);
    this.retryTimer.unref();
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    void (async () => {
      try {
        while (this.queue.length > 0 && this.state === 'streaming' && this.channel) {
          const ch = this.channel;
          const p = this.queue.shift() as Pending;
          const buf = p.buf ?? this.o.encode(p.epoch, p.index, p.last, p.pages);
          p.buf = undefined;
          p.sent = true;
          this.stats.framesSent++;
          this.stats.bytesSent += buf.length;
          this.wakeQueueWaiters();
          // Keep a few frames buffered in the transport: waiting for 'drain' after every frame left
          // the socket idle while this side was scheduled again (measured on a loaded host).
          const written = this.o.written;
          if (ch.send(buf, written && ((ok) => ok && written(buf)))) this.overfull = 0;
          else if (++this.overfull >= TRANSPORT_AHEAD_FRAMES) {
            await ch.drained();
            this.overfull = 0;
          }
        }
      } catch (err) {
        this.lastError = (err as Error).message;
        this.drop(this.backoffMs, 'backoff');
      } finally {
        this.pumping = false;
        this.wakeQueueWaiters();
        this.o.notify(); // a flush measures when the last frame left
      }
    })();
  }

  private wakeQueueWaiters(): void {
    for (const w of this.queueWaiters.splice(0)) w();
  }
}

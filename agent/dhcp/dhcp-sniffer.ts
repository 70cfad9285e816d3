// Passive DHCP watcher: captures on VM-facing interfaces, decodes, keeps the lease table and
// reports lease changes; malformed frames are counted per reason and dropped, never fatal.
import { errorMessage } from '../../shared/errors';
import { createLogger, isTracing } from '../../shared/log';
import { DHCP_DECODE_ERROR_CODES, type DhcpDecodeErrorCode } from './dhcp-decode-error';
import { DhcpFrameView } from './dhcp-frame-codec';
import { DhcpLeaseTable, systemClock, type Clock, type LeaseChangeEvent } from './dhcp-lease-table';
import { DhcpMessageType } from './dhcp-option-codes';
import { macTextToNumber } from './dhcp-wire';
import { PcapCapture, type CaptureStats, type FrameHandler } from './pcap-capture';

/** How often bound leases are checked for expiry. */
export const DEFAULT_EXPIRY_SWEEP_INTERVAL_MS = 1000;
/** Events buffered for a slow `events()` consumer before the oldest are dropped (and counted). */
export const MAX_QUEUED_EVENTS = 10000;

/** What the sniffer needs from a capture; PcapCapture in production, a fake in unit tests. */
export interface FrameCapture {
  /** Frame counts and, where the capture can read them, the kernel's received/dropped counts. */
  stats(): CaptureStats;
  close(): void;
}
export type CaptureOpener = (interfaceName: string, onFrame: FrameHandler) => FrameCapture;

export const openPcapCapture: CaptureOpener = (interfaceName, onFrame) => PcapCapture.open({ interfaceName }, onFrame);

export interface DhcpSnifferOptions {
  /** Interfaces to capture on (VM bridges or taps). */
  interfaces: string[];
  /** Only these client MACs update the table (shadow destinations); all when absent. */
  watchedMacs?: Iterable<string>;
  clock?: Clock;
  /** An existing table (e.g. DhcpLeaseTable.restore(...)); a new one by default. */
  leaseTable?: DhcpLeaseTable;
  expirySweepIntervalMs?: number;
  openCapture?: CaptureOpener;
}

export interface DhcpSnifferStats {
  /** Frames handed to the decoder. */
  frames: number;
  /** Well-formed DHCP frames. */
  decoded: number;
  /** Well-formed frames of MACs not watched. */
  ignored: number;
  /** Rejected frames, total and per reason (counts 0 included, for stable metrics labels). */
  malformed: number;
  malformedByReason: Record<DhcpDecodeErrorCode, number>;
  /** Unexpected failures while applying a decoded message (a bug, never a crash). */
  internalErrors: number;
  leaseEvents: number;
  /** Events dropped because an events() consumer fell MAX_QUEUED_EVENTS behind. */
  eventsDropped: number;
  captures: Record<string, CaptureStats>;
}

/** Message types that tell the lease table something. */
const LEASE_MESSAGE_TYPES = new Set<number>([
  DhcpMessageType.DISCOVER,
  DhcpMessageType.REQUEST,
  DhcpMessageType.DECLINE,
  DhcpMessageType.ACK,
  DhcpMessageType.NAK,
  DhcpMessageType.RELEASE,
]);

export class DhcpSniffer {
  readonly leases: DhcpLeaseTable;
  private readonly view = new DhcpFrameView();
  private readonly captures = new Map<string, FrameCapture>();
  private readonly malformedByReason = Object.fromEntries(DHCP_DECODE_ERROR_CODES.map((c) => [c, 0])) as Record<DhcpDecodeErrorCode, number>;
  private readonly iterators = new Set<EventQueue>();
  private watched: Set<number> | undefined;
  private frames = 0;
  private decoded = 0;
  private ignored = 0;
  private malformed = 0;
  private internalErrors = 0;
  private leaseEvents = 0;
  private eventsDropped = 0;
  private sweepTimer: NodeJS.Timeout | undefined;
  private started = false;
  private readonly log = createLogger('dhcp-sniffer');
  private readonly tracing = isTracing('dhcp');

  constructor(private readonly opts: DhcpSnifferOptions) {
    this.leases = opts.leaseTable ?? new DhcpLeaseTable(opts.clock ?? systemClock);
    if (opts.watchedMacs) this.setWatchedMacs(opts.watchedMacs);
    this.leases.onChange((e) => this.publish(e));
  }

  /** Opens every capture; throws UnavailableError (and opens none) if one cannot be opened. */
  start(): void {
    if (this.started) return;
    const open = this.opts.openCapture ?? openPcapCapture;
    try {
      for (const ifname of this.opts.interfaces) {
        this.captures.set(ifname, open(ifname, (frame, length, truncated) => this.handleFrame(frame, length, truncated)));
      }
    } catch (err) {
      this.closeCaptures();
      throw err;
    }
    this.started = true;
    const interval = this.opts.expirySweepIntervalMs ?? DEFAULT_EXPIRY_SWEEP_INTERVAL_MS;
    this.sweepTimer = setInterval(() => this.leases.expireDue(), interval);
    this.sweepTimer.unref();
  }

  /** Only frames whose client MAC is in `macs` update the table from now on. */
  setWatchedMacs(macs: Iterable<string>): void {
    this.watched = new Set([...macs].map(macTextToNumber).filter((n) => n >= 0));
  }

  /** Back to learning every MAC. */
  watchAll(): void {
    this.watched = undefined;
  }

  /** Subscribes to lease changes; returns the unsubscribe function. */
  onLeaseChange(listener: (e: LeaseChangeEvent) => void): () => void {
    return this.leases.onChange(listener);
  }

  /** Lease changes as an async iterable; ends when the sniffer is closed. */
  events(): AsyncIterable<LeaseChangeEvent> {
    const queue = new EventQueue(() => this.eventsDropped++, () => this.iterators.delete(queue));
    this.iterators.add(queue);
    return queue;
  }

  /**
   * Decodes one frame and applies it. Public so that other frame sources (and tests) can feed
   * frames; `frame` is only read during the call.
   */
  handleFrame(frame: Buffer, length: number, truncated = false): void {
    this.frames++;
    if (truncated) {
      this.reject('OVERSIZED');
      return;
    }
    const view = this.view;
    const code = view.tryDecode(frame, length);
    if (code !== null) {
      this.reject(code);
      return;
    }
    this.decoded++;
    const packet = view.packet;
    if (this.watched && !this.watched.has(packet.macNumber())) {
      this.ignored++;
      return;
    }
    if (!LEASE_MESSAGE_TYPES.has(packet.messageType)) return;
    try {
      const msg = packet.toMessage();
      if (this.tracing) this.log.debug({ type: msg.messageType, mac: msg.chaddr, yiaddr: msg.yiaddr, vlanId: view.vlanId }, 'dhcp message');
      this.leases.apply(msg, { vlanId: view.vlanId });
    } catch (err) {
      this.internalErrors++;
      this.log.error({ err: errorMessage(err) }, 'failed to apply a decoded DHCP message');
    }
  }

  private reject(code: DhcpDecodeErrorCode): void {
    this.malformed++;
    this.malformedByReason[code]++;
    if (this.tracing) this.log.debug({ reason: code, offset: this.view.errorOffset }, 'malformed DHCP frame dropped');
  }

  private publish(e: LeaseChangeEvent): void {
    this.leaseEvents++;
    this.log.info({ kind: e.kind, mac: e.mac, address: e.lease.address, version: e.version }, 'lease change');
    for (const q of this.iterators) q.push(e);
  }

  stats(): DhcpSnifferStats {
    const captures: Record<string, CaptureStats> = {};
    for (const [ifname, c] of this.captures) captures[ifname] = c.stats();
    return {
      frames: this.frames,
      decoded: this.decoded,
      ignored: this.ignored,
      malformed: this.malformed,
      malformedByReason: { ...this.malformedByReason },
      internalErrors: this.internalErrors,
      leaseEvents: this.leaseEvents,
      eventsDropped: this.eventsDropped,
      captures,
    };
  }

  close(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    this.closeCaptures();
    for (const q of this.iterators) q.end();
    this.iterators.clear();
    this.started = false;
  }

  private closeCaptures(): void {
    for (const c of this.captures.values()) {
      try {
        c.close();
      } catch (err) {
        this.log.warn({ err: errorMessage(err) }, 'closing a capture failed');
      }
    }
    this.captures.clear();
  }
}

/** Bounded single-consumer queue behind events(). */
class EventQueue implements AsyncIterable<LeaseChangeEvent> {
  private readonly items: LeaseChangeEvent[] = [];
  private waiting: ((r: IteratorResult<LeaseChangeEvent>) => void) | undefined;
  private done = false;

  constructor(private readonly onDrop: () => void, private readonly onReturn: () => void) {}

  push(e: LeaseChangeEvent): void {
    if (this.done) return;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = undefined;
      w({ value: e, done: false });
      return;
    }
    this.items.push(e);
    if (this.items.length > MAX_QUEUED_EVENTS) {
      this.items.shift();
      this.onDrop();
    }
  }

  end(): void {
    this.done = true;
    if (this.waiting) this.waiting({ value: undefined, done: true });
    this.waiting = undefined;
  }

  [Symbol.asyncIterator](): AsyncIterator<LeaseChangeEvent> {
    return {
      next: () => {
        const item = this.items.shift();
        if (item) return Promise.resolve({ value: item, done: false });
        if (this.done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => (this.waiting = resolve));
      },
      return: () => {
        this.end();
        this.onReturn();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

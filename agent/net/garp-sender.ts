// Announcer on libpcap (`cap`): sends gratuitous ARP / unsolicited NA bursts as raw Ethernet
// frames on a named interface of the caller's network namespace.
import { createLogger } from '../../shared/log';
import { buildGratuitousArp } from './arp-frame';
import { parseIp, parseMac } from '../../shared/ip-address';
import { AnnounceError } from './net-errors';
import { buildUnsolicitedNa } from './ndp-frame';
import type { Announcement, AnnouncementBurst, Announcer } from './ports';

/** Kernel buffer of a send-only handle: small, nothing is captured. */
const PCAP_BUFFER_BYTES = 64 * 1024;
/** Matches no frame (a frame is never 1 byte long), so the handle captures nothing. */
const CAPTURE_NOTHING_FILTER = 'less 1';
const MAX_FRAME_BYTES = 1514;
/** Frames kept built: one per VM address a host may take over is plenty. */
const MAX_PREBUILT_FRAMES = 1024;

interface CapHandle {
  open(device: string, filter: string, bufSize: number, buffer: Buffer): string;
  send(buffer: Buffer, nBytes?: number): void;
  close(): void;
}
// `cap` ships no typings; this is the part used here.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Cap } = require('cap') as { Cap: new () => CapHandle };

export interface GarpSenderOptions {
  /** Opens a send handle on an interface (tests and other mechanisms may replace pcap). */
  openHandle?: (interfaceName: string) => Pick<CapHandle, 'send' | 'close'>;
}

function openPcapHandle(interfaceName: string): CapHandle {
  const cap = new Cap();
  cap.open(interfaceName, CAPTURE_NOTHING_FILTER, PCAP_BUFFER_BYTES, Buffer.alloc(MAX_FRAME_BYTES));
  return cap;
}

/** Builds the frame announcing `a.address` as reachable at `a.mac`. */
export function buildAnnouncementFrame(a: Pick<Announcement, 'address' | 'mac' | 'interface'>): Buffer {
  const ip = parseIp(a.address);
  const mac = parseMac(a.mac);
  if (!ip) throw new AnnounceError(a.interface, `'${a.address}' is not an IP address`);
  if (!mac) throw new AnnounceError(a.interface, `'${a.mac}' is not a MAC address`);
  return ip.family === 4 ? buildGratuitousArp({ mac, ipv4: ip.bytes }) : buildUnsolicitedNa({ mac, ipv6: ip.bytes });
}

/**
 * One pcap handle per interface is opened on first use and kept until close(), so an announcement
 * costs a send, not a handle setup. Note: libpcap (through `cap`) puts the interface in
 * promiscuous mode while a handle is open (bridge ports already are).
 */
export class GarpSender implements Announcer {
  private readonly log = createLogger('garp-sender');
  private readonly handles = new Map<string, Pick<CapHandle, 'send' | 'close'>>();
  private readonly running = new Set<() => void>();
  /** Announcement frames by interface|address|mac, built once (see prepare). */
  private readonly frames = new Map<string, Buffer>();
  private readonly openHandle: (interfaceName: string) => Pick<CapHandle, 'send' | 'close'>;
  private closed = false;

  constructor(options: GarpSenderOptions = {}) {
    this.openHandle = options.openHandle ?? openPcapHandle;
  }

  /**
   * Opens the handle for `interfaceName` ahead of time (e.g. when a shadow becomes ready) and,
   * given the address and MAC, builds the frame a burst for them will send (a switch's prepare:
   * the switch then sends a frame already built, by code already run).
   */
  prepare(interfaceName: string, frame?: Pick<Announcement, 'address' | 'mac'>): void {
    this.handle(interfaceName);
    if (frame) this.frameFor({ interface: interfaceName, ...frame });
  }

  private frameFor(a: Pick<Announcement, 'interface' | 'address' | 'mac'>): Buffer {
    const key = `${a.interface}|${a.address}|${a.mac}`;
    let frame = this.frames.get(key);
    if (!frame) {
      frame = buildAnnouncementFrame(a);
      // Bounded: the oldest goes first (a Map iterates in insertion order).
      if (this.frames.size >= MAX_PREBUILT_FRAMES) this.frames.delete(this.frames.keys().next().value!);
      this.frames.set(key, frame);
    }
    return frame;
  }

  private handle(interfaceName: string): Pick<CapHandle, 'send' | 'close'> {
    if (this.closed) throw new AnnounceError(interfaceName, 'sender is closed');
    let h = this.handles.get(interfaceName);
    if (!h) {
      try {
        h = this.openHandle(interfaceName);
      } catch (err) {
        throw new AnnounceError(interfaceName, `cannot open a pcap handle: ${(err as Error).message}`, { cause: err });
      }
      this.handles.set(interfaceName, h);
    }
    return h;
  }

  private sendOne(a: Announcement, frame: Buffer): void {
    try {
      this.handle(a.interface).send(frame, frame.length);
    } catch (err) {
      // A handle that failed once (interface recreated, down) is reopened on the next frame.
      this.handles.get(a.interface)?.close();
      this.handles.delete(a.interface);
      if (err instanceof AnnounceError) throw err;
      throw new AnnounceError(a.interface, `send failed: ${(err as Error).message}`, { cause: err });
    }
  }

  announce(a: Announcement): AnnouncementBurst {
    let sent = 0;
    let cancelled = false;
    let timer: NodeJS.Timeout | undefined;
    let finish!: (n: number) => void;
    const finished = new Promise<number>((resolve) => (finish = resolve));
    const stop = () => {
      cancelled = true;
      if (timer) clearTimeout(timer);
      this.running.delete(stop);
      finish(sent);
    };
    let firstSent: Promise<void>;
    try {
      const frame = this.frameFor(a);
      this.sendOne(a, frame);
      sent = 1;
      firstSent = Promise.resolve();
      this.running.add(stop);
      const startMs = performance.now();
      const next = () => {
        if (cancelled) return;
        if (sent >= a.count) return stop();
        // Spacing measured from the start, so timer lateness does not accumulate over the burst.
        const delayMs = Math.max(0, startMs + sent * a.intervalMs - performance.now());
        timer = setTimeout(() => {
          if (cancelled) return;
          try {
            this.sendOne(a, frame);
            sent++;
          } catch (err) {
            this.log.warn({ err, interface: a.interface, address: a.address, sent }, 'announcement burst stopped');
            return stop();
          }
          next();
        }, delayMs);
      };
      next();
    } catch (err) {
      firstSent = Promise.reject(err);
      finish(0);
    }
    return { firstSent, finished, cancel: stop };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const stop of [...this.running]) stop();
    for (const h of this.handles.values()) h.close();
    this.handles.clear();
  }
}

// libpcap live capture of DHCP frames on one interface, through our own addon
// (native/pcap-capture.c via ./pcap-binding): libpcap hands frames over in batches, one JS call
// per batch, and each frame is passed on in place from its slot of the batch buffer. The kernel's
// own counts (frames that passed the filter, frames dropped with the ring full) come from
// pcap_stats. (The `cap` package stays for sending raw frames, agent/net/garp-sender.ts.)
import { InvalidArgumentError, UnavailableError, errorMessage } from '../../shared/errors';
import { createLogger } from '../../shared/log';
import { pcapAddon, type PcapHandle, type PcapRawStats } from './pcap-binding';

/** DHCP on UDP 67/68, untagged or inside one 802.1Q tag. */
export const DHCP_BPF_FILTER = '(udp and (port 67 or port 68)) or (vlan and udp and (port 67 or port 68))';
/**
 * Bytes kept of each frame; longer frames are delivered cut and flagged truncated. A DHCP message
 * fits a 1500-byte MTU: 1518 bytes with Ethernet and one 802.1Q tag. The snap length also sizes
 * libpcap's ring slots (TPACKET_V2 in immediate mode): with the 65535 that `cap` hard-codes and
 * offloads on (veth, bridges, taps) each slot took 128 KiB, so a 16 MiB ring held 256 frames.
 * At 1900 a slot with its header stays within 2 KiB, two to a page (2048 measured 4 KiB each).
 */
export const DEFAULT_SNAPLEN = 1900;
/**
 * Kernel ring for the capture: 32 MiB holds 17,050 frames of DEFAULT_SNAPLEN (measured on veth),
 * some 0.85 s of stalled event loop at 20,000 frames/s, in 33 MiB mapped (cap's 16 MiB ring
 * mapped 32 MiB for its 256 frames). Drops show in the kernel counts
 * (CaptureStats.kernelDropped).
 */
export const DEFAULT_CAPTURE_BUFFER_BYTES = 32 * 1024 * 1024;
/** Frames copied out per batch (one JS call each); the batch buffer is this many snap lengths. */
export const BATCH_FRAMES = 256;
/**
 * Pause after a wakeup that delivered frames before reading again. In immediate mode every frame
 * wakes the event loop on its own (about 1.75 frames per batch at 20,000 frames/s); with the pause,
 * frames arriving meanwhile wait in the ring and come in one batch. DHCP can afford the latency.
 */
export const DEFAULT_BATCH_DELAY_MS = 1;
const DLT_EN10MB = 1;

export interface CaptureStats {
  /** Frames delivered by libpcap and handed to the frame handler. */
  captured: number;
  /** Frames longer than the snap length (delivered cut). */
  truncated: number;
  /** Batches delivered (one JS call each): captured / batches is the mean batch size. */
  batches?: number;
  /**
   * Kernel count (pcap_stats ps_recv, the socket's PACKET_STATISTICS tp_packets) of frames that
   * passed the capture filter since the capture opened, dropped ones included. Absent when
   * unavailable (see kernelStatsUnavailable).
   */
  kernelReceived?: number;
  /** Kernel count (ps_drop, tp_drops) of frames lost because the capture ring was full. */
  kernelDropped?: number;
  /** TPACKET_V3 only (libpcap uses V2 in immediate mode, so absent here): times the ring queue froze. */
  kernelFreezeQueueCount?: number;
  /** Why the kernel counts are absent (never a 0 that was not measured). */
  kernelStatsUnavailable?: string;
  /** Why delivery stopped early (a read error on the capture); absent while it runs. */
  readError?: string;
}

export interface PcapCaptureOptions {
  interfaceName: string;
  filter?: string;
  /** Kernel ring size in bytes (pcap_set_buffer_size). */
  bufferBytes?: number;
  /** Bytes kept per frame (pcap_set_snaplen), DEFAULT_SNAPLEN by default. */
  snaplen?: number;
  /** Pause in ms after a delivered batch (0: read on every wakeup), DEFAULT_BATCH_DELAY_MS by default. */
  batchDelayMs?: number;
}

/** Called once per frame; `frame` is reused for a later frame, so copy what you keep. */
export type FrameHandler = (frame: Buffer, length: number, truncated: boolean) => void;

/** Running total of a 32-bit counter that wraps (libpcap's are u_int: 2.5 days at 20k frames/s). */
export class WrappingCounter {
  private last = 0;
  total = 0;
  add(raw: number): void {
    this.total += (raw - this.last) >>> 0;
    this.last = raw;
  }
}

function intOption(field: string, value: number | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > max) throw new InvalidArgumentError(field, `must be an integer from ${min} to ${max}, got ${value}`);
  return value;
}

/**
 * Live capture in immediate mode (frames are not held back in a TPACKET_V3 block), promiscuous,
 * non-blocking, its fd watched by the event loop. Throws UnavailableError when the interface
 * cannot be opened, InvalidArgumentError for a bad option or a filter that does not compile.
 * An open capture is closed by close(), at exit, or when it is garbage-collected unreferenced.
 */
export class PcapCapture {
  readonly interfaceName: string;
  readonly snaplen: number;
  private readonly handle: PcapHandle;
  private readonly addon: ReturnType<typeof pcapAddon>;
  private readonly received = new WrappingCounter();
  private readonly dropped = new WrappingCounter();
  private captured = 0;
  private truncated = 0;
  private batches = 0;
  private closed = false;
  private readError: string | undefined;
  private statsError: string | undefined;
  private readonly log;

  private constructor(opts: PcapCaptureOptions, onFrame: FrameHandler) {
    this.interfaceName = opts.interfaceName;
    this.log = createLogger('pcap-capture', { interface: opts.interfaceName });
    if (typeof opts.interfaceName !== 'string' || opts.interfaceName.length === 0) throw new InvalidArgumentError('interfaceName', 'must be a non-empty string');
    const filter = opts.filter ?? DHCP_BPF_FILTER;
    const snaplen = (this.snaplen = intOption('snaplen', opts.snaplen, DEFAULT_SNAPLEN, 64, 65535));
    const bufferBytes = intOption('bufferBytes', opts.bufferBytes, DEFAULT_CAPTURE_BUFFER_BYTES, 65536, 2 ** 31 - 1);
    const batchDelayMs = intOption('batchDelayMs', opts.batchDelayMs, DEFAULT_BATCH_DELAY_MS, 0, 1000);
    const batch = Buffer.alloc(BATCH_FRAMES * snaplen);
    const meta = new Uint32Array(BATCH_FRAMES * 2);
    // One view per slot, made once: delivering a frame allocates nothing.
    const frames = Array.from({ length: BATCH_FRAMES }, (_, i) => batch.subarray(i * snaplen, (i + 1) * snaplen));
    const onBatch = (count: number, error?: string): void => {
      if (count < 0) {
        this.readError = error ?? 'read failed';
        this.log.error({ err: this.readError }, 'capture stopped');
        return;
      }
      this.batches++;
      // A handler may close the capture: the rest of the batch is then dropped.
      for (let i = 0; i < count && !this.closed; i++) {
        this.captured++;
        const caplen = meta[2 * i];
        const cut = caplen < meta[2 * i + 1];
        if (cut) this.truncated++;
        onFrame(frames[i], caplen, cut);
      }
    };
    try {
      this.addon = pcapAddon();
      this.handle = this.addon.pcapOpen(opts.interfaceName, filter, snaplen, bufferBytes, batch, meta, onBatch, batchDelayMs);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'EFILTER') throw new InvalidArgumentError('filter', `${JSON.stringify(filter)} does not compile: ${errorMessage(err)}`, { cause: err });
      throw new UnavailableError(`cannot capture on ${opts.interfaceName}: ${errorMessage(err)}`, { cause: err });
    }
    if (this.handle.linkType !== DLT_EN10MB) {
      this.addon.pcapClose(this.handle);
      throw new UnavailableError(`cannot capture on ${opts.interfaceName}: link type ${this.handle.linkType}, only Ethernet is decoded`);
    }
    this.log.info({ filter, snaplen, bufferBytes, batchDelayMs }, 'capture started');
  }

  /** Opens the capture and starts delivering frames to `onFrame`. */
  static open(opts: PcapCaptureOptions, onFrame: FrameHandler): PcapCapture {
    return new PcapCapture(opts, onFrame);
  }

  /** Frame counts, with the kernel's counts read now (pcap_stats: one getsockopt, cheap enough for every scrape). */
  stats(): CaptureStats {
    if (!this.closed) this.readKernel();
    const out: CaptureStats = { captured: this.captured, truncated: this.truncated, batches: this.batches };
    if (this.statsError !== undefined) out.kernelStatsUnavailable = this.statsError;
    else {
      out.kernelReceived = this.received.total;
      out.kernelDropped = this.dropped.total;
    }
    if (this.readError !== undefined) out.readError = this.readError;
    return out;
  }

  private readKernel(): void {
    if (this.statsError !== undefined) return;
    let raw: PcapRawStats;
    try {
      raw = this.addon.pcapStats(this.handle);
    } catch (err) {
      this.statsError = `pcap_stats failed: ${errorMessage(err)}; last totals received ${this.received.total}, dropped ${this.dropped.total}`;
      this.log.warn({ reason: this.statsError }, 'kernel capture counters unavailable');
      return;
    }
    this.received.add(raw.received);
    this.dropped.add(raw.dropped);
  }

  close(): void {
    if (this.closed) return;
    this.readKernel(); // last read while the handle is open; stats() keeps reporting these totals
    this.closed = true;
    this.addon.pcapClose(this.handle);
    this.log.info({ captured: this.captured, kernelReceived: this.received.total, kernelDropped: this.dropped.total }, 'capture closed');
  }
}

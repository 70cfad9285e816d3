// libpcap live capture (through the `cap` binding) of DHCP frames on one interface: the only
// file that imports `cap`. Frames are handed out in place, from one reused buffer. The kernel's
// own counts (frames that passed the filter, frames dropped with the ring full) come from the
// capture's packet socket (agent/net/packet-socket-stats.ts), since cap has no pcap_stats().
import { Cap } from 'cap';
import { UnavailableError, errorMessage } from '../../shared/errors';
import { createLogger } from '../../shared/log';
import { PacketSocketProbe, type PacketSocketCounter } from '../net/packet-socket-stats';

/** DHCP on UDP 67/68, untagged or inside one 802.1Q tag. */
export const DHCP_BPF_FILTER = '(udp and (port 67 or port 68)) or (vlan and udp and (port 67 or port 68))';
/**
 * Kernel ring for the capture. libpcap uses TPACKET_V2 in immediate mode (cap turns it on), whose
 * slots are fixed-size: with cap's 65535-byte snap length and offloads on (veth, bridges, taps of
 * virtio guests) each frame gets a 128 KiB block, so 16 MiB gives 256 slots (32 MiB mapped), about
 * 13 ms of stall at 20,000 frames/s; with offloads off, slots are MTU-sized (thousands of frames).
 * Drops show in the kernel counts (CaptureStats.kernelDropped).
 */
export const DEFAULT_CAPTURE_BUFFER_BYTES = 16 * 1024 * 1024;
/** Largest frame copied out; longer ones are flagged truncated (the snap length itself is 65535). */
export const FRAME_BUFFER_BYTES = 65535;

export interface CaptureStats {
  /** Frames delivered by libpcap to this process. */
  captured: number;
  /** Frames longer than FRAME_BUFFER_BYTES (delivered cut). */
  truncated: number;
  /**
   * Kernel count (PACKET_STATISTICS tp_packets) of frames that passed the capture filter since the
   * capture opened, dropped ones included. Absent when unavailable (see kernelStatsUnavailable).
   */
  kernelReceived?: number;
  /** Kernel count (tp_drops) of frames lost because the capture ring was full. */
  kernelDropped?: number;
  /** TPACKET_V3 only (libpcap uses V2 in immediate mode): times the ring queue froze. */
  kernelFreezeQueueCount?: number;
  /** Why the kernel counts are absent (never a 0 that was not measured). */
  kernelStatsUnavailable?: string;
}

export interface PcapCaptureOptions {
  interfaceName: string;
  filter?: string;
  bufferBytes?: number;
}

/** Called once per frame; `frame` is reused for the next frame, so copy what you keep. */
export type FrameHandler = (frame: Buffer, length: number, truncated: boolean) => void;

/**
 * Live capture in immediate mode (cap enables it when libpcap has it), so DHCP frames are not
 * held back in a TPACKET_V3 block. Throws UnavailableError when the interface cannot be opened.
 */
export class PcapCapture {
  readonly interfaceName: string;
  private readonly cap = new Cap();
  private readonly buffer = Buffer.alloc(FRAME_BUFFER_BYTES);
  private readonly kernel: PacketSocketCounter | { unavailable: string };
  private captured = 0;
  private truncated = 0;
  private closed = false;
  private closedKernelStats: CaptureStats | undefined;
  private readonly log;

  private constructor(opts: PcapCaptureOptions, onFrame: FrameHandler) {
    this.interfaceName = opts.interfaceName;
    this.log = createLogger('pcap-capture', { interface: opts.interfaceName });
    const probe = PacketSocketProbe.before(opts.interfaceName);
    let linkType: string;
    try {
      linkType = this.cap.open(opts.interfaceName, opts.filter ?? DHCP_BPF_FILTER, opts.bufferBytes ?? DEFAULT_CAPTURE_BUFFER_BYTES, this.buffer);
    } catch (err) {
      throw new UnavailableError(`cannot capture on ${opts.interfaceName}: ${errorMessage(err)}`, { cause: err });
    }
    if (linkType !== 'ETHERNET') {
      this.cap.close();
      throw new UnavailableError(`cannot capture on ${opts.interfaceName}: link type ${linkType}, only Ethernet is decoded`);
    }
    this.kernel = probe.attach();
    if ('unavailable' in this.kernel) this.log.warn({ reason: this.kernel.unavailable }, 'kernel capture counters unavailable');
    this.cap.on('packet', (nbytes: number, trunc: boolean) => {
      this.captured++;
      if (trunc) this.truncated++;
      onFrame(this.buffer, Math.min(nbytes, FRAME_BUFFER_BYTES), trunc);
    });
    this.log.info({ filter: opts.filter ?? DHCP_BPF_FILTER, socketFd: 'fd' in this.kernel ? this.kernel.fd : undefined }, 'capture started');
  }

  /** The fd of the packet socket whose kernel counters are read; undefined when unavailable. */
  get kernelSocketFd(): number | undefined {
    return 'fd' in this.kernel ? this.kernel.fd : undefined;
  }

  /** Opens the capture and starts delivering frames to `onFrame`. */
  static open(opts: PcapCaptureOptions, onFrame: FrameHandler): PcapCapture {
    return new PcapCapture(opts, onFrame);
  }

  /** Frame counts, with the kernel's counts read now (a getsockopt, cheap enough for every scrape). */
  stats(): CaptureStats {
    if (this.closedKernelStats) return { ...this.closedKernelStats, captured: this.captured, truncated: this.truncated };
    return { captured: this.captured, truncated: this.truncated, ...this.kernelStats(false) };
  }

  private kernelStats(final: boolean): Partial<CaptureStats> {
    if ('unavailable' in this.kernel) return { kernelStatsUnavailable: this.kernel.unavailable };
    const state = final ? this.kernel.finish() : this.kernel.read();
    if ('unavailable' in state) return { kernelStatsUnavailable: state.unavailable };
    const { received, dropped, freezeQueueCount } = state.counts;
    return freezeQueueCount === undefined
      ? { kernelReceived: received, kernelDropped: dropped }
      : { kernelReceived: received, kernelDropped: dropped, kernelFreezeQueueCount: freezeQueueCount };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // Last read while the socket is still ours; stats() keeps reporting these totals.
    this.closedKernelStats = { captured: this.captured, truncated: this.truncated, ...this.kernelStats(true) };
    this.cap.close();
    this.cap.removeAllListeners('packet');
    this.log.info({ captured: this.captured, kernelReceived: this.closedKernelStats.kernelReceived, kernelDropped: this.closedKernelStats.kernelDropped }, 'capture closed');
  }
}

// libpcap live capture (through the `cap` binding) of DHCP frames on one interface: the only
// file that imports `cap`. Frames are handed out in place, from one reused buffer.
import { execFile } from 'node:child_process';
import { Cap } from 'cap';
import { UnavailableError, errorMessage } from '../../shared/errors';
import { createLogger } from '../../shared/log';

/** DHCP on UDP 67/68, untagged or inside one 802.1Q tag. */
export const DHCP_BPF_FILTER = '(udp and (port 67 or port 68)) or (vlan and udp and (port 67 or port 68))';
/** Kernel ring for the capture: about 25,000 DHCP-sized frames of slack when the event loop stalls. */
export const DEFAULT_CAPTURE_BUFFER_BYTES = 16 * 1024 * 1024;
/** Largest frame copied out; longer ones are flagged truncated (the snap length itself is 65535). */
export const FRAME_BUFFER_BYTES = 65535;
const SS_TIMEOUT_MS = 5000;

export interface CaptureStats {
  /** Frames delivered by libpcap to this process. */
  captured: number;
  /** Frames longer than FRAME_BUFFER_BYTES (delivered cut). */
  truncated: number;
  /**
   * Frames the kernel dropped because the capture ring was full, when known. Not known today: see
   * KERNEL_DROPS_UNAVAILABLE (undefined is reported, never a 0 that was not measured).
   */
  kernelDropped?: number;
  /** Why kernelDropped is not reported. */
  kernelDropsUnavailable?: string;
  /**
   * The socket's own drop counter (sk_drops, `ss -0 -m` skmem d): frames refused before the ring
   * (e.g. receive buffer full). It does NOT count TPACKET ring overflows, libpcap's drop case.
   */
  socketDropped?: number;
}

/**
 * libpcap on Linux captures into a TPACKET ring; frames lost when it is full are counted in the
 * packet socket's tp_drops, which only getsockopt(PACKET_STATISTICS) (what pcap_stats() reads)
 * returns, and the `cap` binding exposes neither pcap_stats() nor the socket's fd.
 */
export const KERNEL_DROPS_UNAVAILABLE = 'unavailable: the cap binding has no pcap_stats() (ring drops are only in PACKET_STATISTICS)';

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
  private captured = 0;
  private truncated = 0;
  private closed = false;
  private readonly log;

  private constructor(opts: PcapCaptureOptions, onFrame: FrameHandler) {
    this.interfaceName = opts.interfaceName;
    this.log = createLogger('pcap-capture', { interface: opts.interfaceName });
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
    this.cap.on('packet', (nbytes: number, trunc: boolean) => {
      this.captured++;
      if (trunc) this.truncated++;
      onFrame(this.buffer, Math.min(nbytes, FRAME_BUFFER_BYTES), trunc);
    });
    this.log.info({ filter: opts.filter ?? DHCP_BPF_FILTER }, 'capture started');
  }

  /** Opens the capture and starts delivering frames to `onFrame`. */
  static open(opts: PcapCaptureOptions, onFrame: FrameHandler): PcapCapture {
    return new PcapCapture(opts, onFrame);
  }

  stats(): CaptureStats {
    return { captured: this.captured, truncated: this.truncated };
  }

  /** stats() plus what the kernel tells of drops: the socket drop counter (via `ss`); ring drops are unavailable. */
  async statsWithKernelDrops(): Promise<CaptureStats> {
    const base: CaptureStats = { ...this.stats(), kernelDropsUnavailable: KERNEL_DROPS_UNAVAILABLE };
    const dropped = await packetSocketDrops(process.pid, this.interfaceName).catch((err) => {
      this.log.debug({ err: errorMessage(err) }, 'socket drop count unavailable');
      return undefined;
    });
    return dropped === undefined ? base : { ...base, socketDropped: dropped };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.cap.close();
    this.cap.removeAllListeners('packet');
    this.log.info({ captured: this.captured }, 'capture closed');
  }
}

/**
 * Sums the drop counter (skmem `d`, sk_drops) of the packet sockets owned by `pid` on `ifname`, as
 * `ss` reports them. Not the ring-overflow count (see KERNEL_DROPS_UNAVAILABLE).
 */
export function packetSocketDrops(pid: number, ifname: string): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    execFile('ss', ['-0', '-m', '-p', '-n'], { timeout: SS_TIMEOUT_MS }, (err, stdout) => {
      if (err) return reject(err);
      resolve(parseSsPacketDrops(stdout, pid, ifname));
    });
  });
}

/** Parses `ss -0 -m -p -n` output; undefined when no socket of `pid` on `ifname` is listed. */
export function parseSsPacketDrops(text: string, pid: number, ifname: string): number | undefined {
  let total: number | undefined;
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (!fields[0]?.startsWith('p_')) continue;
    if (fields[3] !== `*:${ifname}`) continue;
    if (!new RegExp(`pid=${pid},`).test(line)) continue;
    const m = /skmem:\([^)]*\bd(\d+)\)/.exec(line);
    if (m) total = (total ?? 0) + Number(m[1]);
  }
  return total;
}

// Typed interface over the libpcap capture of the native addon (native/pcap-capture.c, part of
// umbra_memory.node): the only file that reaches it. Errors from the addon carry `.code`
// (EINVAL for bad arguments, EFILTER for a filter that does not compile, EPCAP with libpcap's own
// text otherwise).
import path from 'node:path';
import { errorMessage } from '../../shared/errors';
import { NativeAddonMissingError, nativeBuildDir } from '../memory/native-binding';

/** Opaque handle of one open capture (keeps its batch buffer and callback alive). */
export interface PcapHandle {
  /** Link-layer type (DLT_*): 1 is Ethernet. */
  readonly linkType: number;
  /** Frames one batch holds (batch length / snap length, bounded by the meta array). */
  readonly slots: number;
}

/** libpcap's running counters (pcap_stats): 32-bit, they wrap. */
export interface PcapRawStats {
  /** Frames that passed the filter, those dropped with the ring full included. */
  received: number;
  /** Frames dropped because the capture ring was full. */
  dropped: number;
  /** Frames the interface itself dropped (from its rx_dropped counter). */
  ifDropped: number;
}

/**
 * Called once per batch: `count` frames sit in the batch buffer, frame i at i * snaplen with
 * meta[2i] bytes captured of meta[2i+1] on the wire. On a read error, called once with
 * count -1 and the message; nothing is delivered after that.
 */
export type PcapBatchCallback = (count: number, error?: string) => void;

interface PcapAddon {
  /** delayMs: pause after a wakeup that delivered frames before polling again (0 to 1000). */
  pcapOpen(ifname: string, filter: string, snaplen: number, bufferBytes: number, batch: Buffer, meta: Uint32Array, onBatch: PcapBatchCallback, delayMs: number): PcapHandle;
  pcapStats(handle: PcapHandle): PcapRawStats;
  pcapClose(handle: PcapHandle): void;
}

let addon: PcapAddon | undefined;

/** The addon's capture functions; NativeAddonMissingError when absent or built without them. */
export function pcapAddon(): PcapAddon {
  if (addon) return addon;
  const file = path.join(nativeBuildDir(), 'umbra_memory.node');
  let a: Partial<PcapAddon>;
  try {
    // Same file (and, through require's cache, same instance) as agent/memory/native-binding.ts.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    a = require(file) as Partial<PcapAddon>;
  } catch (err) {
    throw new NativeAddonMissingError(errorMessage(err), { cause: err });
  }
  if (typeof a.pcapOpen !== 'function' || typeof a.pcapStats !== 'function' || typeof a.pcapClose !== 'function') {
    throw new NativeAddonMissingError(`${file} was built without native/pcap-capture.c`);
  }
  addon = a as PcapAddon;
  return addon;
}

// How the DHCP captures' counters appear in health and metrics: per interface, frames captured
// and the kernel's received/dropped counts, or a plain "unavailable" with the reason.
import { Gauge, type Registry } from 'prom-client';
import type { CaptureStats } from './pcap-capture';

/**
 * One line for health: "eth0 kernel received 120 dropped 0 (captured 120); tap1 kernel counts
 * unavailable: ...", with ", capture stopped: ..." after an interface whose capture hit a read error.
 */
export function captureHealthDetail(captures: Readonly<Record<string, CaptureStats>>): string {
  const parts = Object.entries(captures).map(([ifname, c]) => {
    const counts =
      c.kernelReceived !== undefined && c.kernelDropped !== undefined
        ? `${ifname} kernel received ${c.kernelReceived} dropped ${c.kernelDropped} (captured ${c.captured})`
        : `${ifname} kernel counts ${c.kernelStatsUnavailable ?? 'unavailable'} (captured ${c.captured})`;
    return c.readError !== undefined ? `${counts}, capture stopped: ${c.readError}` : counts;
  });
  return parts.length > 0 ? parts.join('; ') : 'no capture open';
}

/**
 * Registers per-interface capture gauges read at scrape time from `captures()` (undefined while
 * no capture runs): frames captured, kernel received and dropped (absent when unavailable), and
 * whether the kernel counts are available. Returns the gauges (keep a reference).
 */
export function registerCaptureMetrics(registry: Registry, captures: () => Readonly<Record<string, CaptureStats>> | undefined): Gauge[] {
  let snapshot: Readonly<Record<string, CaptureStats>> = {};
  const opts = (name: string, help: string, pick: (c: CaptureStats) => number | undefined, first = false) =>
    new Gauge({
      name,
      help,
      labelNames: ['interface'],
      registers: [registry],
      collect() {
        // The first gauge takes the snapshot so one scrape reads the kernel once per capture.
        if (first) snapshot = captures() ?? {};
        this.reset();
        for (const [ifname, c] of Object.entries(snapshot)) {
          const v = pick(c);
          if (v !== undefined) this.set({ interface: ifname }, v);
        }
      },
    });
  return [
    opts('umbra_agent_dhcp_capture_kernel_stats_available', '1 when the kernel counters of the DHCP capture (pcap_stats) are read, 0 when unavailable', (c) => (c.kernelReceived !== undefined ? 1 : 0), true),
    opts('umbra_agent_dhcp_capture_frames', 'Frames delivered by libpcap to the DHCP sniffer', (c) => c.captured),
    opts('umbra_agent_dhcp_capture_kernel_received_frames', 'Frames that passed the DHCP capture filter in the kernel (pcap_stats ps_recv), dropped ones included', (c) => c.kernelReceived),
    opts('umbra_agent_dhcp_capture_kernel_dropped_frames', 'Frames the kernel dropped because the DHCP capture ring was full (pcap_stats ps_drop)', (c) => c.kernelDropped),
  ];
}

// Pure parts of the DHCP capture's accounting: libpcap's wrapping 32-bit counters summed into
// running totals, and how the captures' counts appear in health and metrics.
import test from 'ava';
import { Registry } from 'prom-client';
import { captureHealthDetail, registerCaptureMetrics } from '../../../agent/dhcp/dhcp-capture-report';
import { WrappingCounter, type CaptureStats } from '../../../agent/dhcp/pcap-capture';

test('libpcap counters are summed across their 32-bit wrap', (t) => {
  const c = new WrappingCounter();
  c.add(0);
  t.is(c.total, 0);
  c.add(120);
  c.add(120);
  t.is(c.total, 120, 'an unchanged reading adds nothing');
  c.add(2 ** 32 - 10);
  t.is(c.total, 2 ** 32 - 10);
  c.add(5); // wrapped: 10 to reach 2^32, then 5
  t.is(c.total, 2 ** 32 + 5);
  c.add(2 ** 32 - 1);
  c.add(3);
  t.is(c.total, 2 ** 33 + 3, 'a second wrap');
});

const CAPTURES: Record<string, CaptureStats> = {
  eth0: { captured: 4000, truncated: 0, kernelReceived: 4120, kernelDropped: 120 },
  tap7: { captured: 3, truncated: 0, kernelStatsUnavailable: 'pcap_stats failed: capture closed; last totals received 3, dropped 0' },
};

test('health names each interface with its kernel counts or why they are unavailable', (t) => {
  t.is(
    captureHealthDetail(CAPTURES),
    'eth0 kernel received 4120 dropped 120 (captured 4000); tap7 kernel counts pcap_stats failed: capture closed; last totals received 3, dropped 0 (captured 3)',
  );
  t.is(
    captureHealthDetail({ tap1: { captured: 9, truncated: 0, kernelReceived: 9, kernelDropped: 0, readError: 'pcap_dispatch: The interface disappeared' } }),
    'tap1 kernel received 9 dropped 0 (captured 9), capture stopped: pcap_dispatch: The interface disappeared',
  );
  t.is(captureHealthDetail({}), 'no capture open');
});

test('metrics carry per-interface kernel counts, and no kernel series where they are unavailable', async (t) => {
  const registry = new Registry();
  let captures: Record<string, CaptureStats> | undefined;
  let reads = 0;
  registerCaptureMetrics(registry, () => {
    reads++;
    return captures;
  });
  t.notRegex(await registry.metrics(), /\{interface=/, 'no series while no capture runs');
  captures = CAPTURES;
  reads = 0;
  const text = await registry.metrics();
  t.is(reads, 1, 'one scrape reads the captures once');
  t.regex(text, /umbra_agent_dhcp_capture_kernel_received_frames\{interface="eth0"\} 4120/);
  t.regex(text, /umbra_agent_dhcp_capture_kernel_dropped_frames\{interface="eth0"\} 120/);
  t.regex(text, /umbra_agent_dhcp_capture_frames\{interface="tap7"\} 3/);
  t.regex(text, /umbra_agent_dhcp_capture_kernel_stats_available\{interface="eth0"\} 1/);
  t.regex(text, /umbra_agent_dhcp_capture_kernel_stats_available\{interface="tap7"\} 0/);
  t.notRegex(text, /kernel_(received|dropped)_frames\{interface="tap7"\}/);
});

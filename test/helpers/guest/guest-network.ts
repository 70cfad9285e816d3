// Lab wiring for QEMU guests on top of NetnsLab: a hypervisor host namespace with its own VM
// bridge uplinked to the lab's VM network, taps on that bridge, a dnsmasq DHCP server, and UDP
// probes sent to the guest from a client namespace.
import * as path from 'node:path';
import { promises as fs } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { run, waitFor, type NetnsLab } from '../netns';
import { parseGuestStat, type GuestStat } from './guest-stat';

/** Bridge inside each hypervisor namespace that its taps join. */
export const HOST_VM_BRIDGE = 'br0';

/** A namespace acting as a hypervisor host: `br0` with an uplink to the lab bridge `labBridge`. */
export async function addHypervisorHost(lab: NetnsLab, name: string, labBridge: string): Promise<string> {
  const ns = await lab.addHost(name);
  await lab.link(ns, { bridge: labBridge, ifname: 'uplink0' });
  await run('ip', ['-n', ns, 'link', 'add', HOST_VM_BRIDGE, 'type', 'bridge']);
  await run('ip', ['-n', ns, 'link', 'set', HOST_VM_BRIDGE, 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0']);
  await run('ip', ['-n', ns, 'link', 'set', 'uplink0', 'master', HOST_VM_BRIDGE]);
  await run('ip', ['-n', ns, 'link', 'set', HOST_VM_BRIDGE, 'up']);
  return ns;
}

/** A persistent tap on the host's VM bridge, ready for QEMU's `-netdev tap,ifname=`. */
export async function addTap(ns: string, tapName: string): Promise<void> {
  await run('ip', ['-n', ns, 'tuntap', 'add', 'dev', tapName, 'mode', 'tap']);
  await run('ip', ['-n', ns, 'link', 'set', tapName, 'master', HOST_VM_BRIDGE]);
  await run('ip', ['-n', ns, 'link', 'set', tapName, 'up']);
}

/** dnsmasq as the VM network's DHCP server in `ns` (which must already have `ifname` addressed). */
export async function startDnsmasq(lab: NetnsLab, ns: string, opts: { ifname: string; rangeStart: string; rangeEnd: string; workDir: string }): Promise<ChildProcess> {
  const leaseFile = path.join(opts.workDir, `dnsmasq-${ns}.leases`);
  await fs.writeFile(leaseFile, '');
  const child = lab.spawn(ns, 'dnsmasq', [
    '--keep-in-foreground', '--conf-file=/dev/null', '--port=0', '--bind-interfaces',
    `--interface=${opts.ifname}`, `--dhcp-range=${opts.rangeStart},${opts.rangeEnd},255.255.255.0,1h`,
    `--dhcp-leasefile=${leaseFile}`, '--pid-file=', '--log-facility=-', '--log-dhcp',
    // By default dnsmasq pings an address for up to 3 s before offering it; the lab's range is ours alone.
    '--no-ping',
  ]);
  return child;
}

/** Sends one datagram from `ns` and returns the reply text (undefined when none came). */
export async function udpProbe(lab: Pick<NetnsLab, 'exec'>, ns: string, host: string, port: number, payload: string, timeoutMs = 1000): Promise<string | undefined> {
  const out = await lab.exec(ns, process.execPath, [path.join(__dirname, 'udp-probe.js'), host, String(port), payload, String(timeoutMs)]);
  const res = JSON.parse(out.trim()) as { ok: boolean; reply?: string };
  return res.ok ? res.reply : undefined;
}

export async function queryGuestStat(lab: Pick<NetnsLab, 'exec'>, ns: string, host: string, port: number, timeoutMs = 1000): Promise<GuestStat | undefined> {
  const reply = await udpProbe(lab, ns, host, port, 'stat', timeoutMs);
  return reply === undefined ? undefined : parseGuestStat(reply);
}

/** Polls until the guest answers a stat probe. */
export function waitForGuestStat(lab: Pick<NetnsLab, 'exec'>, ns: string, host: string, port: number, timeoutMs: number): Promise<GuestStat> {
  return waitFor(`guest ${host}:${port} to answer`, () => queryGuestStat(lab, ns, host, port, 500), timeoutMs, 200);
}

// The story the lab tells once its hosts are up (used by test/lab/lab.ts): hv1's agent has launched
// the QEMU guest; it takes its address from dnsmasq; a client probes it every few ms while a loop
// inside writes memory; IP shadows, memory replication and pre-launched shadow QEMUs warm up on
// two hosts; the guest is switched over on command; then, with automatic mode on and a load
// generator saturating its new host, by prediction; the figures of each switchover are printed.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { queryGuestStat, waitForGuestStat } from '../helpers/guest/guest-network';
import { guestAddressFromSerial, type GuestStat } from '../helpers/guest/guest-stat';
import { waitFor } from '../helpers/netns';
import { GRPC_CALL } from '../helpers/umbra-cluster';
import { type ClusterGuest, GUEST_PAUSED_STEPS, type WireSwitchover, guestPauseMs, guestQmpPath, guestSerialPath, qemusUnder } from '../helpers/vm-cluster';
import { DNSMASQ_LEASES } from './lab-vm-network';
import { execError, execIn, startDetached } from './lab-os';
import { buildGuestProber, type NamespaceSpawner, type ProbeReport, startGuestProber } from '../helpers/guest-prober';
import { LAB_DIR, type LabState } from './lab-state';

export const loadVmId = (hostId: string): string => `load-${hostId}`;
/** The load generator spins this share of every 100 ms on one core, and ends by itself after LOAD_LIFETIME_MS. */
const LOAD_BUSY_SHARE = 0.7;
const LOAD_LIFETIME_MS = 150_000;
const PREDICTION_TIMEOUT_MS = 120_000;

/** The client's probe period: every few ms, within what a TCG guest echoes without falling behind. */
const PROBE_PERIOD_MS = 2;
/** How long the client keeps receiving after its last probe (a TCG guest's late echoes). */
const PROBE_DRAIN_MS = 500;
const GUEST_BOOT_TIMEOUT_MS = 150_000;
const SHADOWS_TIMEOUT_MS = 90_000;
const READY_TIMEOUT_MS = 120_000;
/** Refusals (a shadow momentarily not ready) are retried this many times. */
const MIGRATE_ATTEMPTS = 5;

export interface StoryContext {
  state: LabState;
  /** Agent host id -> its namespace. */
  hostNs: Record<string, string>;
  clientNs: string;
  coordNs: string;
  guest: ClusterGuest;
  sourceHost: string;
  /** Where the guest goes on command, and where a load generator then saturates it. */
  predictHost: string;
  /** Runs umbractl against the lab's coordinator; throws with its output on a non-zero exit. */
  umbractl(args: string[]): string;
  /** `umbra-agent health --json` of a host, parsed. */
  agentHealth(hostId: string): { report?: { capabilities: Array<{ name: string; detail: string }> } };
  say(text: string): void;
}

interface ShadowsJson {
  vms: Array<{ vm_id: string; active_host: string; version: string; config: { address: string } }>;
  shadows: Array<{ vm_id: string; host_id: string; state: string; version: string; current_version: string }>;
}

interface ReplicationJson {
  vm_id: string;
  source_host: string;
  shadow_hosts: string[];
  automatic: boolean;
  status: { epoch: string; shadows: Array<{ host_id: string; state: string; acked_epoch: string; lag_bytes: string }> } | null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;
const exec = { exec: async (ns: string, cmd: string, args: string[]) => execIn(ns, cmd, args) };

function show(ctx: StoryContext, args: string[]): string {
  process.stdout.write(`\n$ umbractl ${args.join(' ')}\n`);
  const out = ctx.umbractl(args);
  process.stdout.write(out);
  return out;
}

function capability(ctx: StoryContext, hostId: string, name: string): string {
  try {
    return ctx.agentHealth(hostId).report?.capabilities.find((c) => c.name === name)?.detail ?? '(not reported)';
  } catch (err) {
    return `(health failed: ${execError(err).split('\n')[0]})`;
  }
}

/** The lab's namespaces are its own (no NetnsLab): a process in one is started under `ip netns exec`. */
const inNamespace: NamespaceSpawner = { spawn: (ns, cmd, args, options) => spawn('ip', ['netns', 'exec', ns, cmd, ...args], options) };

/** The client: the native prober in the client namespace (guest-prober.ts), started and stopped over its stdin. */
function startProber(ctx: StoryContext, binary: string, address: string): { stop(): Promise<ProbeReport>; end(): void } {
  const prober = startGuestProber(inNamespace, ctx.clientNs, binary, address, ctx.guest.workload.port, PROBE_PERIOD_MS, PROBE_DRAIN_MS);
  prober.child.stderr!.pipe(process.stderr);
  return {
    stop: () => prober.stop(),
    // After a failed story: it exits by itself after its report, or is ended here.
    end: () => {
      if (prober.child.exitCode === null && prober.child.signalCode === null) prober.child.kill();
    },
  };
}

async function guestBoots(ctx: StoryContext): Promise<string> {
  const { guest } = ctx;
  ctx.say(`${ctx.sourceHost}'s agent launched guest ${guest.id} (QEMU, TCG, ${guest.memoryBytes / 1048576} MiB); waiting for it to boot and take an address by DHCP`);
  const address = await waitFor(
    'the guest to print its DHCP lease on its serial console',
    async () => {
      try {
        return guestAddressFromSerial(readFileSync(guestSerialPath(guest), 'utf8'));
      } catch {
        return undefined;
      }
    },
    GUEST_BOOT_TIMEOUT_MS,
    500,
  );
  const qemu = (await qemusUnder(LAB_DIR)).find((q) => q.qmpSocketPath === guestQmpPath(guest));
  const lease = readFileSync(DNSMASQ_LEASES, 'utf8').split('\n').find((l) => l.includes(guest.mac)) ?? '';
  ctx.say(`guest ${guest.id} is up: QEMU pid ${qemu?.pid ?? '?'} on ${ctx.sourceHost}, address ${address} from dnsmasq (lease: ${lease.trim()})`);
  return address;
}

async function shadowsWarm(ctx: StoryContext): Promise<string[]> {
  ctx.say(`waiting for the coordinator to place ${ctx.guest.id}'s IP shadows on two hosts (from the DHCP lease the agents captured)`);
  const hosts = await waitFor(
    'two warm, current IP shadows',
    async () => {
      const j = JSON.parse(ctx.umbractl(['shadows', '--json'])) as ShadowsJson;
      const warm = j.shadows.filter((s) => s.vm_id === ctx.guest.id && s.state === 'warm' && s.version === s.current_version);
      return warm.length >= 2 ? warm.map((s) => s.host_id).sort() : undefined;
    },
    SHADOWS_TIMEOUT_MS,
    1000,
  );
  show(ctx, ['shadows']);
  return hosts;
}

/**
 * Waits until the coordinator, by itself, replicates the guest's memory from `from` to the hosts
 * holding its IP shadows (switchover.memory_follows_shadows) and each has a full copy and a shadow
 * QEMU waiting; resolves with those hosts.
 */
async function memoryShadowsReady(ctx: StoryContext, from: string): Promise<string[]> {
  const vm = ctx.guest.id;
  ctx.say(`waiting for the coordinator to replicate ${vm}'s memory from ${from} to the hosts holding its IP shadows, and to pre-launch a paused shadow QEMU on each (incoming, RAM on the shadow image); no operator step`);
  const hosts = await waitFor(
    'memory shadows on the IP shadow hosts, streaming with a full copy, and shadow QEMUs waiting',
    async () => {
      const [r] = JSON.parse(ctx.umbractl(['replication', '--vm', vm, '--json'])) as ReplicationJson[];
      if (!r || r.source_host !== from || !r.automatic || r.shadow_hosts.length === 0) return undefined;
      const links = r.status?.shadows ?? [];
      const copied = r.shadow_hosts.every((h) => links.some((l) => l.host_id === h && l.state === 'streaming' && Number(l.acked_epoch) > 0));
      return copied && r.shadow_hosts.every((h) => new RegExp(`\\b${vm} inmigrate\\b`).test(capability(ctx, h, 'shadow-vms'))) ? [...r.shadow_hosts].sort() : undefined;
    },
    READY_TIMEOUT_MS,
    1000,
  );
  show(ctx, ['replication']);
  for (const h of hosts) process.stdout.write(`\n$ umbra-agent health   (on ${h}: the shadow QEMU)\n  shadow-vms: ${capability(ctx, h, 'shadow-vms')}\n`);
  return hosts;
}

/** umbractl migrate, retried while the destination is refused as not ready yet; its output shown. */
async function migrate(ctx: StoryContext, destination: string): Promise<void> {
  const args = ['migrate', ctx.guest.id, '--to', destination];
  for (let attempt = 1; ; attempt++) {
    process.stdout.write(`\n$ umbractl ${args.join(' ')}\n`);
    try {
      process.stdout.write(ctx.umbractl(args));
      return;
    } catch (err) {
      const msg = execError(err);
      process.stdout.write(msg + '\n');
      if (!/cannot switch/.test(msg) || attempt >= MIGRATE_ATTEMPTS) throw new Error(`umbractl migrate failed: ${msg.split('\n').at(-1)}`);
      ctx.say('refused before anything was touched (the shadow was not ready); trying again in 2 s');
    }
    await sleep(2000);
  }
}

function lastSwitchover(ctx: StoryContext): WireSwitchover {
  const { operator, coordinator } = ctx.state;
  const out = execIn(ctx.coordNs, process.execPath, [
    GRPC_CALL, 'umbra.coordinator.v1.MigrationService', 'ListMigrations', coordinator, operator.ca, operator.cert, operator.key, 'coordinator',
    JSON.stringify({ vm_id: ctx.guest.id, limit: 10 }),
  ]);
  const res = JSON.parse(out) as { code: number; details: string; response?: { switchovers: WireSwitchover[] } };
  // Newest first; the VM switchover's own IP switch is listed too (as its switch-ip step's event): skip it.
  const sw = res.response?.switchovers.find((s) => s.steps.some((st) => st.step === 'pause-source'));
  if (!sw) throw new Error(`ListMigrations: ${res.details || 'no switchover recorded'}`);
  return sw;
}

function printFigures(title: string, sw: WireSwitchover, probe: ProbeReport, window: { start: number; end: number }, before: GuestStat, after: GuestStat | undefined, address: string): void {
  const pause = guestPauseMs(sw);
  const line = (s: string) => process.stdout.write(`  ${s}\n`);
  process.stdout.write(`\nFigures: ${title}\n`);
  line(`switchover ${sw.source_host} -> ${sw.destination_host}: ${sw.status}, ${sw.total_ms.toFixed(1)} ms from command to committed${sw.error ? ` (${sw.error})` : ''}`);
  for (const s of sw.steps) line(`  ${s.step.padEnd(24)} ${s.host_id.padEnd(5)} ${s.duration_ms.toFixed(1).padStart(8)} ms  ${s.ok ? 'ok' : `FAILED: ${s.error}`}`);
  const how = pause?.from === 'agents' ? "from the source agent's pause to the destination agent's guest running" : GUEST_PAUSED_STEPS.join(' + ');
  line(`guest paused: ${pause === undefined ? 'n/a (did not resume on the destination)' : `${pause.ms.toFixed(1)} ms`} (${how})`);
  const inWindow = probe.maxGapEndMs >= window.start && probe.maxGapStartMs <= window.end;
  line(`client (UDP to ${address} every ${probe.periodMs} ms): ${probe.sent} probes sent, ${probe.answered} answered, ${probe.lost} lost${probe.lost ? ` (numbers ${probe.lostRanges.join(', ')})` : ''}`);
  line(`client's longest gap between answers: ${probe.maxGapMs.toFixed(1)} ms${inWindow ? ', during the switchover' : ', outside the switchover'}`);
  if (!after) {
    line('in-guest counter: the guest did not answer after the switchover');
    return;
  }
  const continued = after.boot === before.boot && after.counter > before.counter;
  line(
    `in-guest counter: ${before.counter} before -> ${after.counter} after, boot id ${before.boot}${after.boot === before.boot ? ' both times' : ` then ${after.boot}`}: ${continued ? 'continued, no reboot' : 'DID NOT CONTINUE'}`,
  );
  line(`in-guest memory writer: ${before.memwritePasses} -> ${after.memwritePasses} passes over ${after.memwriteMb} MiB`);
}

/** Runs the story; resolves with the guest's address once the figures are printed (the guest keeps running on the destination). */
export async function runStory(ctx: StoryContext): Promise<{ address: string }> {
  const { guest, clientNs } = ctx;
  const address = await guestBoots(ctx);
  const first = await waitForGuestStat(exec, clientNs, address, guest.workload.port, 60_000);
  ctx.say(`the guest answers the client: counter ${first.counter}, boot id ${first.boot}, a loop writing ${first.memwriteMb} MiB at ${guest.workload.memwriteRateMbps} MB/s`);
  await shadowsWarm(ctx);
  const hosts = await memoryShadowsReady(ctx, ctx.sourceHost);
  const destination = hosts.includes(ctx.predictHost) ? ctx.predictHost : hosts[0];

  const proberBinary = await buildGuestProber(LAB_DIR);
  ctx.say(`the client in ${clientNs} now sends a UDP probe to ${address} every ${PROBE_PERIOD_MS} ms; the guest echoes each`);
  const prober = startProber(ctx, proberBinary, address);
  let report: ProbeReport | undefined;
  let commanded: WireSwitchover | undefined;
  try {
    await sleep(2000);
    const before = (await queryGuestStat(exec, clientNs, address, guest.workload.port)) ?? first;
    const window = { start: nowMs(), end: 0 };
    await migrate(ctx, destination);
    window.end = nowMs();
    await sleep(2000);
    const after = await waitForGuestStat(exec, clientNs, address, guest.workload.port, 20_000).catch(() => undefined);
    report = await prober.stop();
    show(ctx, ['shadows']);
    process.stdout.write(`\n$ umbra-agent health   (vms on each host)\n`);
    for (const h of Object.keys(ctx.hostNs)) process.stdout.write(`  ${h}: vms: ${capability(ctx, h, 'vms')}; shadow-vms: ${capability(ctx, h, 'shadow-vms')}\n`);
    commanded = lastSwitchover(ctx);
    printFigures('switchover on command', commanded, report, window, before, after, address);
  } finally {
    if (!report) await prober.stop().catch(() => undefined);
    prober.end();
  }
  if (commanded?.status === 'SUCCEEDED') await switchoverByPrediction(ctx, address, commanded, proberBinary);
  return { address };
}

/** Ends the load generator (it may have ended by itself). */
function killLoad(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/**
 * Act 2: the guest runs on predictHost; the coordinator replicates its memory on to its IP shadow hosts by itself; automatic mode
 * is switched on and a load generator (profiled as a VM of that host) saturates predictHost; the
 * coordinator forecasts the saturation and switches the guest over by itself.
 */
async function switchoverByPrediction(ctx: StoryContext, address: string, previous: WireSwitchover, proberBinary: string): Promise<void> {
  const { guest, clientNs } = ctx;
  const from = ctx.predictHost;
  const qemu = (await qemusUnder(path.join(LAB_DIR, from))).find((q) => q.qmpSocketPath.endsWith(`${encodeURIComponent(guest.id)}.shadow.qmp`));
  if (!qemu) throw new Error(`no QEMU of ${guest.id} on ${from} after the switchover`);
  // The profiler finds the guest's QEMU (and the load generator) by pid file.
  writeFileSync(path.join(LAB_DIR, from, `${guest.id}.pid`), `${qemu.pid}\n`);
  process.stdout.write(`\n--- by prediction: a load generator saturates ${from}; the coordinator moves ${guest.id} away by itself ---\n`);
  await memoryShadowsReady(ctx, from);
  show(ctx, ['policy', 'set', '--automatic', 'true', '--threshold', '0.5']);
  const prober = startProber(ctx, proberBinary, address);
  let report: ProbeReport | undefined;
  let load: { pid: number } | undefined;
  try {
    // The counter is read and the window opened before the load starts: the coordinator may
    // switch the guest over within a second of it.
    await sleep(1000);
    const before = await waitForGuestStat(exec, clientNs, address, guest.workload.port, 20_000);
    const window = { start: nowMs(), end: 0 };
    const busyMs = Math.round(LOAD_BUSY_SHARE * 100);
    const script = `const spin = () => { const end = Date.now() + ${busyMs}; while (Date.now() < end) {} setTimeout(spin, ${100 - busyMs}); }; spin(); setTimeout(() => process.exit(0), ${LOAD_LIFETIME_MS});`;
    load = startDetached(ctx.state, loadVmId(from), ctx.hostNs[from], process.execPath, ['-e', script]);
    writeFileSync(path.join(LAB_DIR, from, 'load.pid'), `${load.pid}\n`);
    ctx.say(`a load generator (pid ${load.pid}, ${busyMs}% of a core, profiled as VM ${loadVmId(from)}) now runs on ${from}; waiting for the coordinator to forecast ${from}'s saturation and switch ${guest.id} over`);
    const sw = await waitFor(
      'a switchover triggered by prediction',
      async () => {
        const s = lastSwitchover(ctx);
        return s.id !== previous.id ? s : undefined;
      },
      PREDICTION_TIMEOUT_MS,
      500,
    );
    window.end = nowMs();
    ctx.say(`the coordinator switched ${guest.id} ${sw.source_host} -> ${sw.destination_host} (${sw.status})`);
    killLoad(load.pid);
    await sleep(2000);
    const after = await waitForGuestStat(exec, clientNs, address, guest.workload.port, 20_000).catch(() => undefined);
    report = await prober.stop();
    const events = ctx.umbractl(['events', '--limit', '1000']).split('\n').filter((l) => /migration_(recommended|triggered)/.test(l) && l.includes(guest.id));
    process.stdout.write(`\n$ umbractl events   (the recommendation and the trigger)\n${events.slice(-4).join('\n')}\n`);
    printFigures('switchover by prediction', sw, report, window, before, after, address);
  } finally {
    if (load) killLoad(load.pid);
    if (!report) await prober.stop().catch(() => undefined);
    prober.end();
    ctx.umbractl(['policy', 'set', '--automatic', 'false']);
  }
}

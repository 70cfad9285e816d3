// The vm-switchover bench's product case (umbra-cluster): the same guest and workload switched
// over by the real product instead of the mechanism in one process. A coordinator and two agents
// (hv-a, hv-b) in network namespaces with mTLS (the e2e SwitchoverCluster): hv-a's agent launches
// the guest from its vm module, its RAM streams through the replication stream to hv-b's shadow
// image, hv-b's agent pre-launches the shadow QEMU, then the operator's TriggerMigrationWatch (what
// `umbractl migrate` calls; trigger-migration-cli, connected beforehand) moves it while the UDP
// prober pings the guest every millisecond from the client namespace.
//
// Figures: command to running (the call to the destination agent's report of the guest running
// there, else to the arrival of the resume-ended update, one hop later), the SwitchoverEvent's step
// timings, the pause (from the source agent's pause to the guest running on the destination, the
// two agents' instants in the SwitchoverEvent; the coordinator's steps where an agent lacks them),
// the client's longest gap, the final flush's replication
// bytes (and where its time went, from the source agent's log), and the background rate before it.
import { type ChildProcess } from 'node:child_process';
import { waitFor } from '../../test/helpers/netns';
import { COORD_IP, HOSTS, PORT, SwitchoverCluster, VM } from '../../test/e2e/switchover/switchover-fixture';
import { COORDINATOR_PORT } from '../../test/helpers/umbra-cluster';
import { guestPauseMs } from '../../test/helpers/vm-cluster';
import { queryGuestStat, waitForGuestStat } from '../../test/helpers/guest/guest-network';
import type { ProbeReport } from '../../test/helpers/probe-report';
import { startGuestProber } from '../../test/helpers/guest-prober';
import { startTriggerClient } from '../../test/helpers/trigger-client';
import { cleanupOnInterrupt } from '../lib/interrupt';

const BOOT_TIMEOUT_MS = 180000;
const READY_TIMEOUT_MS = 240000;
const SETTLE_MS = 1000;
const WARM_SAMPLE_MS = 2000;
const PROBER_DRAIN_MS = 50;

export interface ClusterCaseResult {
  ok: boolean;
  note?: string;
  commandToRunningMs?: number;
  /** The call to the coordinator's acceptance (verify: the agents asked, journal opened). */
  acceptMs?: number;
  pauseMs?: number;
  totalMs?: number;
  stepsText?: string;
  steps?: Array<{ step: string; duration_ms: number }>;
  longestGapMs?: number;
  firstAnswerAfterResumeMs?: number;
  switchoverBytes?: number;
  warmBytesPerSecond?: number;
  guestContinued?: boolean;
  refusals?: number;
}

interface LinkStatus {
  bytesSent: number;
  epoch: number;
}

async function replicationBytes(c: SwitchoverCluster): Promise<LinkStatus | undefined> {
  const r = await c.agentCall(HOSTS[0][0], 'ReplicationControlService', 'GetReplicationStatus', { vm_id: VM });
  if (r.code !== 0) return undefined;
  const src = (r.response as { sources?: Array<{ vm_id: string; epoch: string; shadows: Array<{ host_id: string; bytes_sent: string }> }> }).sources?.find((s) => s.vm_id === VM);
  const link = src?.shadows.find((l) => l.host_id === HOSTS[1][0]);
  return link ? { bytesSent: Number(link.bytes_sent), epoch: Number(src!.epoch) } : undefined;
}

export async function clusterSwitchover(opts: {
  memoryBytes: number;
  workload: { memwriteMb: number; memwriteRateMbps: number; fillPct: number };
  periodMs: number;
  /** The native prober's binary (guest-prober.ts). */
  proberBinary: string;
  /** The coordinator's switchover.chain_source_steps (false: pause, flush and device state as three agent calls). */
  chainSourceSteps: boolean;
  firstAnswerAfter: (p: ProbeReport, runAtMs: number) => number;
  /** --timeline: print the daemons' log lines around the client's longest gap (diagnostic). */
  timeline?: boolean;
  log?: (s: string) => void;
}): Promise<ClusterCaseResult> {
  const log = opts.log ?? (() => undefined);
  // The coordinator's shadow VM reconciliation at its product defaults (the e2e fixture's 500 ms
  // asks every agent, hence every QEMU, twice a second).
  const c = new SwitchoverCluster({ memoryBytes: opts.memoryBytes, workload: opts.workload, shadowVmIntervalMs: 3000, switchover: { chain_source_steps: opts.chainSourceSteps } });
  const children: ChildProcess[] = [];
  const releaseCleanup = cleanupOnInterrupt(() => c.cleanup());
  try {
    await c.start('vbc');
    await waitFor('cluster guest RAM fill', async () => (await queryGuestStat(c.lab, c.ns.cli, c.guestIp, PORT))?.fillDone, BOOT_TIMEOUT_MS, 500);
    await c.ctl(['replication', 'start', VM, '--from', HOSTS[0][0], '--to', HOSTS[1][0]]);
    const op = c.pki.operator;
    const trigger = await startTriggerClient(c.lab, c.ns.coord, { endpoint: `${COORD_IP}:${COORDINATOR_PORT}`, identity: op, vm: VM, destination: HOSTS[1][0], timeoutMs: READY_TIMEOUT_MS });
    children.push(trigger.child);
    // The memory shadow's first full copy and the shadow QEMU take a while: sample the
    // background rate once replication has an acked epoch.
    await waitFor('replication streaming', async () => ((await replicationBytes(c))?.epoch ?? 0) > 1 || undefined, READY_TIMEOUT_MS, 500);
    // A warm destination also has its shadow QEMU waiting for the device state. A call made while
    // the coordinator still launches it waits for that launch (seconds, with 1 GiB to map) under
    // the VM's lock, which is not the switchover's latency.
    await waitFor('shadow QEMU prepared on the destination', async () => {
      const r = await c.agentCall(HOSTS[1][0], 'VmService', 'QueryVm', { vm_id: VM, role: 'VM_ROLE_SHADOW' });
      return r.code === 0 && (r.response?.vm as { status?: string } | undefined)?.status === 'inmigrate' ? true : undefined;
    }, READY_TIMEOUT_MS, 250);
    const w0 = await replicationBytes(c);
    const tw0 = performance.now();
    await new Promise((r) => setTimeout(r, WARM_SAMPLE_MS));
    const w1 = await replicationBytes(c);
    const warmBytesPerSecond = w0 && w1 ? (w1.bytesSent - w0.bytesSent) / ((performance.now() - tw0) / 1000) : undefined;

    const before = await waitForGuestStat(c.lab, c.ns.cli, c.guestIp, PORT, 20000);
    const prober = startGuestProber(c.lab, c.ns.cli, opts.proberBinary, c.guestIp, PORT, opts.periodMs, PROBER_DRAIN_MS);
    children.push(prober.child);
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const b0 = await replicationBytes(c);
    const report = await trigger.fire();
    const after = await waitForGuestStat(c.lab, c.ns.cli, c.guestIp, PORT, 20000).catch(() => undefined);
    const gap = await prober.stop();
    // Only now: the trigger client's exit stalls this machine for some ms (trigger-migration-cli).
    await trigger.close();
    const b1 = await replicationBytes(c);
    const sw = report.switchover;
    if (!report.ok || !sw) return { ok: false, note: `switchover ${sw?.status ?? 'not run'}: ${sw?.error ?? report.error ?? ''}${report.lastRefusal ? ` (last refusal: ${report.lastRefusal})` : ''}`, longestGapMs: gap.maxGapMs, refusals: report.refusals };
    const resumed = report.updates.find((u) => u.step === 'resume-destination' && u.state === 'SWITCHOVER_STEP_STATE_ENDED');
    const runAtMs = resumed?.atMs ?? report.endedAtMs;
    const continued = after !== undefined && after.boot === before.boot && after.counter >= before.counter;
    const steps = sw.steps.map((s) => ({ step: s.step, duration_ms: s.duration_ms }));
    const firstStart = report.updates.find((u) => u.state === 'SWITCHOVER_STEP_STATE_STARTED');
    const finished = c.coordinator.log.filter((l) => l.includes('"switchover finished"') && l.includes('"timings"')).at(-1);
    if (finished) log(`umbra-cluster coordinator timings: ${JSON.stringify((JSON.parse(finished) as { timings: unknown }).timings)}`);
    const flushLine = c.agents[HOSTS[0][0]].log.filter((l) => l.includes('"switch-out flush"')).at(-1);
    const flush = flushLine ? (JSON.parse(flushLine) as { flush: { wireBytes: number } }).flush : undefined;
    if (flush) log(`umbra-cluster source agent flush: ${JSON.stringify(flush)}`);
    log(`umbra-cluster: ${report.refusals} refusals before the accepted call (last: ${report.lastRefusal || '-'})`);
    if (opts.timeline) printTimeline(c, gap, log);
    return {
      ok: continued,
      commandToRunningMs: (guestRunningMonoMs(c) ?? runAtMs) - report.calledAtMs,
      acceptMs: report.acceptedAtMs - report.calledAtMs,
      pauseMs: guestPauseMs(sw)?.ms,
      totalMs: sw.total_ms,
      steps,
      stepsText: `call -> accepted ${(report.acceptedAtMs - report.calledAtMs).toFixed(1)} ms, -> first step started ${firstStart ? (firstStart.atMs - report.calledAtMs).toFixed(1) : '-'} ms; ${sw.steps.map((s) => `${s.step}@${s.host_id} ${s.duration_ms.toFixed(1)}`).join(', ')} ms; coordinator total ${sw.total_ms.toFixed(1)} ms, call returned after ${(report.endedAtMs - report.calledAtMs).toFixed(1)} ms`,
      longestGapMs: gap.maxGapMs,
      firstAnswerAfterResumeMs: opts.firstAnswerAfter(gap, runAtMs),
      // The final flush's frames (the source's replication link is gone after the commit, so its
      // counters cannot be read afterwards); the device state itself is not counted.
      switchoverBytes: flush?.wireBytes ?? (b0 && b1 ? b1.bytesSent - b0.bytesSent : undefined),
      warmBytesPerSecond,
      guestContinued: continued,
      refusals: report.refusals,
    };
  } finally {
    releaseCleanup();
    for (const ch of children) if (ch.exitCode === null && ch.signalCode === null) ch.kill('SIGKILL');
    await c.cleanup();
  }
}

/**
 * The coordinator's and agents' log lines from 300 ms before the client's longest gap to its end,
 * in ms from the gap's start. The prober times on the monotonic clock, pino on the wall clock:
 * converted with this process's offset between the two (same machine; ms resolution of pino).
 */
function printTimeline(c: SwitchoverCluster, gap: ProbeReport, log: (s: string) => void): void {
  const wallMinusMono = wallMinusMonoMs();
  const rows: Array<[number, string]> = [];
  const daemons: Array<[string, string[]]> = [['coordinator', c.coordinator.log], ...Object.entries(c.agents).map(([h, p]) => [h, p.log] as [string, string[]])];
  for (const [who, lines] of daemons) {
    for (const line of lines) {
      let rec: { time?: number | string; msg?: string; [k: string]: unknown };
      try {
        rec = JSON.parse(line) as typeof rec;
      } catch {
        continue;
      }
      const wall = typeof rec.time === 'string' ? Date.parse(rec.time) : rec.time;
      if (wall === undefined || Number.isNaN(wall)) continue;
      const at = wall - wallMinusMono - gap.maxGapStartMs;
      if (at < -300 || at > gap.maxGapEndMs - gap.maxGapStartMs + 20) continue;
      const { time: _t, level: _l, pid: _p, hostname: _h, msg, ...rest } = rec;
      rows.push([at, `${who}: ${msg ?? ''} ${JSON.stringify(rest).slice(0, 300)}`]);
      // Wall-clock instants a line reports (e.g. QEMU's event times) get rows of their own.
      for (const [k, v] of Object.entries(rest)) {
        if (k.endsWith('AtMs') && typeof v === 'number' && v > 1e12) rows.push([v - wallMinusMono - gap.maxGapStartMs, `${who}:   (${k} of "${msg ?? ''}")`]);
      }
    }
  }
  log(`umbra-cluster timeline (ms from the longest gap's start; it ends at +${(gap.maxGapEndMs - gap.maxGapStartMs).toFixed(1)}):`);
  for (const [at, text] of rows.sort((a, b) => a[0] - b[0])) log(`  ${at >= 0 ? '+' : ''}${at.toFixed(0)} ${text}`);
}

/**
 * When the guest ran on the destination, on the prober's and trigger CLI's monotonic clock: the
 * destination agent's 'armed resume' line (its wall clock, converted with this process's offset;
 * same machine). Undefined without it (then the resume-ended update stands in, a hop later).
 */
function guestRunningMonoMs(c: SwitchoverCluster): number | undefined {
  const wallMinusMono = wallMinusMonoMs();
  for (const p of Object.values(c.agents)) {
    const line = p.log.filter((l) => l.includes('"armed resume: the guest runs here"')).at(-1);
    const runningAt = line ? (JSON.parse(line) as { runningAtMs?: number }).runningAtMs : undefined;
    if (runningAt) return runningAt - wallMinusMono;
  }
  return undefined;
}

/**
 * Wall clock minus the monotonic clock the prober and trigger CLI time with (hrtime, ms): what
 * turns a daemon's wall-clock instant into their clock (same machine).
 */
function wallMinusMonoMs(): number {
  return Date.now() - Number(process.hrtime.bigint()) / 1e6;
}

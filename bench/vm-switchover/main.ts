// Benchmark vm-switchover: QEMU's own live migration (defaults, and bandwidth limit
// lifted as libvirt does) against the switchover mechanism (pause, final memory flush, device-state
// only migration with x-ignore-shared, resume on a pre-launched shadow), on the same TCG guest
// with RAM filled to 3/4 and a memory writer running, while a client pings it every millisecond.
// Guest RAM is compared page by page between source and destination before each resume. As in the
// agent, the device-state migration connects during the final flush and is held by QEMU
// (pause-before-switchover) until the flush is done.
//
// The shadow is kept warm by the memory shadowing dirty tracker (uffd-wp through the preload
// library every QEMU here gets) writing the dirtied pages straight into the shadow image: same
// host, so no frames or stream (bench/shadow-sync measures those). Without the native build, a
// stand-in compares the whole RAM with the image instead, so its flush grows with RAM size.
//
// Each case also reports where the client's gap goes after the resume: the first answer's delay,
// the destination QEMU's page faults in the 300 ms after the resume, and with --capture a tcpdump
// of the destination's tap (QEMU's RARP announcements, first probe in, first answer out). The
// device-state figure comes with the CPU time both QEMUs used in it (it does not grow with RAM
// size; the wall time beyond it is waiting to be scheduled).
//
// The umbra-cluster case (cluster-case.ts) runs the same guest and workload through the product: a
// coordinator and two agents with mTLS, replication to a remote shadow, the operator's
// TriggerMigration; its row sits beside the mechanism's and QEMU's.
//
// Usage: npm run bench -- vm-switchover [--memory-mib 256] [--workloads light,heavy] [--cases qemu,umbra,umbra-cluster]
//        [--image-dir DIR] (shadow images there instead of the work directory under /tmp)
//        [--capture] [--no-prefault] (shadow QEMU without prealloc of its image, for comparison)
//        [--cluster-unchained] (umbra-cluster: pause, flush and device state as three agent calls)
//        [--timeline] (umbra-cluster: the daemons' log lines around the client's longest gap)
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, promises as fs, readFileSync, readdirSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { printFigures, printTable, type BenchRow } from '../lib/report';
import { cleanupOnInterrupt } from '../lib/interrupt';
import { NetnsLab, isRoot, waitFor } from '../../test/helpers/netns';
import { buildGuestImage, guestKernelAppend } from '../../test/helpers/guest-image';
import { addHypervisorHost, addTap, queryGuestStat, startDnsmasq, waitForGuestStat } from '../../test/helpers/guest/guest-network';
import { guestAddressFromSerial, type GuestStat } from '../../test/helpers/guest/guest-stat';
import { launchQemu, type QemuProcess } from '../../agent/vm/qemu-process';
import { parseVmDefinition, type VmDefinition } from '../../agent/vm/vm-definition';
import { copyGuestRam, findGuestRam } from '../../agent/vm/qemu-guest-ram';
import { HELD_DEVICE_STATE_CAPABILITIES, launchShadowQemu, queryFinishedMigration, resumeGuest, startHeldDeviceStateMigration, waitIncomingLoaded } from '../../agent/vm/device-state-migration';
import { setRootLogger, silentLogger } from '../../shared/log';
import { compareRam, syncDifferingPages } from './guest-ram-compare';
import type { ProbeReport } from '../../test/helpers/probe-report';
import { buildGuestProber, startGuestProber } from '../../test/helpers/guest-prober';
/** Late echoes after the last case are not waited for: the gaps that matter are long over. */
const PROBER_DRAIN_MS = 50;
import { TrackedShadowImage } from './tracked-shadow-image';
import { TapCapture, type TapCaptureSummary } from './tap-capture';
import { nativeAvailable, uffdPreloadLibraryPath } from '../../agent/memory/native-binding';
import { clusterSwitchover, type ClusterCaseResult } from './cluster-case';

const GUEST_PORT = 7007;
const GUEST_MAC = '52:54:00:66:00:10';
const FILL_PCT = 75;
const BOOT_TIMEOUT_MS = 120000;
/** A QEMU migration that has not converged by then is cancelled and reported as such. */
const CONVERGE_TIMEOUT_MS = 45000;
/** libvirt's "unlimited": QEMU takes max-bandwidth in bytes/s. */
const UNLIMITED_BANDWIDTH = Number.MAX_SAFE_INTEGER;
const PING_PERIOD_MS = 1;
const SETTLE_MS = 1000;
const BASELINE_MS = 3000;
const WARM_ROUNDS = 10;
const WARM_ROUND_MS = 100;
/** Page faults of the destination QEMU are counted over this long after the resume. */
const FAULT_WINDOW_MS = 300;

const WORKLOADS = {
  light: { memwriteMb: 8, memwriteRateMbps: 16 },
  heavy: { memwriteMb: 32, memwriteRateMbps: 0 },
} as const;
type WorkloadName = keyof typeof WORKLOADS;

type PingerResult = ProbeReport;

/**
 * Longest silence the client saw, not counting the window in which the bench itself held the
 * guest paused to compare RAM (neither side would pause for that in production).
 */
export function longestGapExcluding(p: Pick<PingerResult, 'maxGapMs' | 'gaps'>, excluded: [number, number] | undefined): number {
  if (!excluded) return p.maxGapMs;
  let longest = 0;
  for (const [start, end] of p.gaps) {
    const overlap = Math.max(0, Math.min(end, excluded[1]) - Math.max(start, excluded[0]));
    longest = Math.max(longest, end - start - overlap);
  }
  return longest;
}

interface CaseResult {
  ok: boolean;
  note?: string;
  commandToRunningMs?: number;
  pauseMs?: number;
  downtimeMs?: number;
  /**
   * QEMU's guest pause measured as ours: the source's STOP to the destination's load done (its
   * MIGRATION "completed"), both from QEMU's event timestamps, plus the resume. QEMU's downtime
   * ends when the source has sent the last byte, before the destination has loaded it.
   */
  guestPauseMs?: number;
  totalTimeMs?: number;
  bytesSent?: number;
  dirtySyncRounds?: number;
  ramDifferingPages?: number;
  guestContinued?: boolean;
  longestGapMs?: number;
  breakdown?: string;
  warmBytesPerSecond?: number;
  /** From the destination's RUNNING to the client's first answer. */
  firstAnswerAfterResumeMs?: number;
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

class Bench {
  readonly lab = new NetnsLab('vmb');
  readonly workDir = mkdtempSync(path.join(os.tmpdir(), 'umbra-vm-bench-'));
  /** Where shadow images go (--image-dir; default the work directory, i.e. the file system of /tmp). */
  readonly imageDir = arg('image-dir', '') ? mkdtempSync(path.join(arg('image-dir', ''), 'umbra-vm-bench-img-')) : this.workDir;
  readonly procs = new Set<QemuProcess>();
  /** The memory shadowing preload library, when its native build is present: every QEMU gets it. */
  readonly preload = nativeAvailable() && existsSync(uffdPreloadLibraryPath()) ? uffdPreloadLibraryPath() : undefined;
  /** --capture: tcpdump on the destination's tap around each resume (diagnostic; costs CPU). */
  readonly capture = process.argv.includes('--capture');
  hosts: string[] = [];
  client = '';
  /** The native prober's binary (guest-prober.ts), built at set-up. */
  prober = '';
  private tapSeq = 0;
  private hostSeq = 0;

  async setUp(): Promise<void> {
    await this.lab.start();
    const dhcp = await this.lab.addHost('dhcp');
    await this.lab.link(dhcp, { bridge: 'vmnet', ifname: 'eth0', address: '10.66.0.1/24' });
    await startDnsmasq(this.lab, dhcp, { ifname: 'eth0', rangeStart: '10.66.0.100', rangeEnd: '10.66.0.150', workDir: this.workDir });
    this.client = await this.lab.addHost('cli');
    await this.lab.link(this.client, { bridge: 'vmnet', ifname: 'eth0', address: '10.66.0.2/24' });
    this.hosts = [await addHypervisorHost(this.lab, 'hv1', 'vmnet'), await addHypervisorHost(this.lab, 'hv2', 'vmnet')];
    this.prober = await buildGuestProber(this.workDir);
  }

  /** The next hypervisor namespace (alternating) and a fresh tap on it. */
  async nextPlacement(): Promise<{ ns: string; tap: string; tag: string }> {
    const ns = this.hosts[this.hostSeq++ % this.hosts.length];
    const tag = `q${this.tapSeq++}`;
    const tap = `tap-${tag}`;
    await addTap(ns, tap);
    return { ns, tap, tag };
  }

  paths(tag: string): { qmpSocketPath: string; serialLogPath: string } {
    return { qmpSocketPath: path.join(this.workDir, `${tag}.qmp`), serialLogPath: path.join(this.workDir, `${tag}.serial`) };
  }

  async retire(p: QemuProcess): Promise<void> {
    await p.stop(1000).catch(() => undefined);
    this.procs.delete(p);
  }

  startPinger(ip: string): { child: ChildProcess; stop: () => Promise<PingerResult> } {
    return startGuestProber(this.lab, this.client, this.prober, ip, GUEST_PORT, PING_PERIOD_MS, PROBER_DRAIN_MS);
  }

  async cleanup(): Promise<void> {
    for (const p of this.procs) await p.stop(1000).catch(() => undefined);
    await this.lab.cleanup();
    await fs.rm(this.workDir, { recursive: true, force: true });
    await fs.rm(this.imageDir, { recursive: true, force: true });
  }
}

async function bootGuest(b: Bench, def: VmDefinition): Promise<{ proc: QemuProcess; ip: string }> {
  const place = await b.nextPlacement();
  const proc = await launchQemu({ def, args: { tapNames: { net0: place.tap }, ...b.paths(place.tag) }, wrapper: ['ip', 'netns', 'exec', place.ns], preloadLibraryPath: b.preload });
  b.procs.add(proc);
  const ip = await waitFor('guest DHCP lease', async () => guestAddressFromSerial(await proc.readSerialLog()), BOOT_TIMEOUT_MS, 250);
  await waitFor('guest RAM fill', async () => (await queryGuestStat(b.lab, b.client, ip, GUEST_PORT))?.fillDone, BOOT_TIMEOUT_MS, 500);
  return { proc, ip };
}

async function checkContinued(b: Bench, ip: string, before: GuestStat): Promise<boolean> {
  const after = await waitForGuestStat(b.lab, b.client, ip, GUEST_PORT, 20000).catch(() => undefined);
  return after !== undefined && after.boot === before.boot && after.counter >= before.counter;
}

/** QEMU's own pre-copy live migration to a fresh destination (memfd RAM, started with -S). */
async function qemuLiveMigration(b: Bench, def: VmDefinition, src: QemuProcess, ip: string, unlimited: boolean): Promise<{ result: CaseResult; running: QemuProcess }> {
  const place = await b.nextPlacement();
  const uri = `unix:${path.join(b.workDir, `${place.tag}.mig`)}`;
  const dst = await launchQemu({ def, args: { incoming: 'defer', startPaused: true, tapNames: { net0: place.tap }, ...b.paths(place.tag) }, wrapper: ['ip', 'netns', 'exec', place.ns], preloadLibraryPath: b.preload });
  b.procs.add(dst);
  await dst.qmp.migrateSetCapabilities({ events: true });
  await dst.qmp.migrateIncoming(uri);
  await src.qmp.migrateSetCapabilities({ events: true });
  if (unlimited) await src.qmp.migrateSetParameters({ 'max-bandwidth': UNLIMITED_BANDWIDTH });
  const before = (await queryGuestStat(b.lab, b.client, ip, GUEST_PORT))!;
  const pinger = b.startPinger(ip);
  await new Promise((r) => setTimeout(r, SETTLE_MS));

  const done = src.qmp.waitForEvent('MIGRATION', CONVERGE_TIMEOUT_MS, (ev) => ['completed', 'failed', 'cancelled'].includes(String(ev.data.status)));
  done.catch(() => undefined);
  const stopped = src.qmp.waitForEvent('STOP', CONVERGE_TIMEOUT_MS);
  stopped.catch(() => undefined);
  const loaded = dst.qmp.waitForEvent('MIGRATION', CONVERGE_TIMEOUT_MS + 20000, (ev) => ev.data.status === 'completed');
  loaded.catch(() => undefined);
  const t0 = performance.now();
  await src.qmp.migrate(uri);
  try {
    await done;
  } catch {
    await src.qmp.migrateCancel().catch(() => undefined);
    await waitFor('cancel', async () => (await src.qmp.queryMigrate()).status !== 'active', 10000, 50).catch(() => undefined);
    const gap = await pinger.stop();
    await b.retire(dst);
    const info = await src.qmp.queryMigrate();
    return { result: { ok: false, note: `not converged in ${CONVERGE_TIMEOUT_MS / 1000} s (${info.ram?.['dirty-sync-count']} rounds), cancelled`, longestGapMs: gap.maxGapMs }, running: src };
  }
  const info = await queryFinishedMigration(src.qmp);
  if (info.status !== 'completed') {
    const gap = await pinger.stop();
    await b.retire(dst);
    return { result: { ok: false, note: `migration ${info.status}: ${info['error-desc'] ?? ''}`, longestGapMs: gap.maxGapMs }, running: src };
  }
  await waitIncomingLoaded(dst.qmp, 20000, 50);
  const tLoaded = performance.now();
  // Both sides are paused here: the destination's RAM must equal the source's.
  const verifyStart = monoMs();
  const cmp = await compareRam((await findGuestRam(src.pid, def.memorySizeBytes)).procFdPath, (await findGuestRam(dst.pid, def.memorySizeBytes)).procFdPath, def.memorySizeBytes);
  const verifyWindow: [number, number] = [verifyStart, monoMs()];
  if (cmp.differingPages > 0) {
    // QEMU lost pages: do not run the damaged copy. Roll back to the intact, paused source, so
    // the guest lives on and the next case starts from a healthy guest.
    await b.retire(dst);
    await resumeGuest(src.qmp);
    const rolledBack = await checkContinued(b, ip, before);
    const gap = await pinger.stop();
    return {
      result: {
        ok: false,
        note: `RAM of the destination differed in ${cmp.differingPages} pages after ${info.ram?.['dirty-sync-count']} dirty-sync rounds (QEMU said completed in ${info['total-time']} ms); destination discarded, source resumed (${rolledBack ? 'guest fine' : 'guest lost'})`,
        ramDifferingPages: cmp.differingPages,
        dirtySyncRounds: info.ram?.['dirty-sync-count'],
        bytesSent: info.ram?.transferred,
        longestGapMs: longestGapExcluding(gap, verifyWindow),
      },
      running: src,
    };
  }
  const capture = b.capture ? await TapCapture.start(b.lab, place.ns, place.tap, path.join(b.workDir, `${place.tag}.pcap`)) : undefined;
  const { tCont, tRun, runAtMs, runAtUnixMs, faultsAfterResume } = await resumeCounting(dst);
  const continued = await checkContinued(b, ip, before);
  const fl = await faultsAfterResume();
  const gap = await pinger.stop();
  const cap = await capture?.summary(runAtUnixMs, GUEST_PORT);
  await b.retire(src);
  const firstAnswerMs = firstAnswerAfter(gap, runAtMs);
  const [stopEv, loadedEv] = await Promise.all([stopped.catch(() => undefined), loaded.catch(() => undefined)]);
  const guestPauseMs = stopEv?.timestampMs !== undefined && loadedEv?.timestampMs !== undefined ? loadedEv.timestampMs - stopEv.timestampMs + (tRun - tCont) : undefined;
  return {
    result: {
      ok: continued,
      firstAnswerAfterResumeMs: firstAnswerMs,
      breakdown: `resume ${(tRun - tCont).toFixed(1)} ms; first answer ${firstAnswerMs.toFixed(0)} ms after the resume; ${fl.minor} minor / ${fl.major} major faults in the ${FAULT_WINDOW_MS} ms after it${captureText(cap)}`,
      commandToRunningMs: tLoaded - t0 + (tRun - tCont),
      downtimeMs: info.downtime,
      guestPauseMs,
      totalTimeMs: info['total-time'],
      bytesSent: info.ram?.transferred,
      dirtySyncRounds: info.ram?.['dirty-sync-count'],
      ramDifferingPages: cmp.differingPages,
      guestContinued: continued,
      longestGapMs: longestGapExcluding(gap, verifyWindow),
      note: `${cmp.nonZeroPages * 4096 / (1 << 20) | 0} MiB of guest RAM non-zero`,
    },
    running: dst,
  };
}

/** Pre-launched shadow on a warm image, then pause -> final flush -> device state -> resume. */
async function umbraSwitchover(b: Bench, def: VmDefinition, src: QemuProcess, ip: string): Promise<{ result: CaseResult; running: QemuProcess }> {
  const place = await b.nextPlacement();
  const uri = `unix:${path.join(b.workDir, `${place.tag}.mig`)}`;
  const srcRam = await findGuestRam(src.pid, def.memorySizeBytes);
  const image = path.join(b.imageDir, `${place.tag}.ram`);
  await fs.writeFile(image, '');
  await fs.truncate(image, def.memorySizeBytes);
  // Warm-up (background, guest running). With the dirty tracker: a full first round, the shadow
  // QEMU launched on the image, then rounds every WARM_ROUND_MS whose bytes/s is the cost of
  // keeping the shadow warm. Without it: the stand-in (full copy, then compare-and-copy).
  let tracked: TrackedShadowImage | undefined;
  let warmBytesPerSecond: number | undefined;
  if (b.preload) tracked = await TrackedShadowImage.open(src.pid, def.memorySizeBytes, image);
  if (tracked) await tracked.round();
  else await copyGuestRam(srcRam, image);
  const shadow = await launchShadowQemu({ def, ramFile: image, tapNames: { net0: place.tap }, ...b.paths(place.tag), incomingUri: uri, wrapper: ['ip', 'netns', 'exec', place.ns], prefaultRam: !process.argv.includes('--no-prefault') });
  b.procs.add(shadow);
  if (tracked) {
    const warmStart = performance.now();
    let warmBytes = 0;
    for (let i = 0; i < WARM_ROUNDS; i++) {
      await new Promise((r) => setTimeout(r, WARM_ROUND_MS));
      warmBytes += (await tracked.round()).bytes;
    }
    warmBytesPerSecond = warmBytes / ((performance.now() - warmStart) / 1000);
  } else {
    await syncDifferingPages(srcRam.procFdPath, image, def.memorySizeBytes);
  }
  const before = (await queryGuestStat(b.lab, b.client, ip, GUEST_PORT))!;
  const pinger = b.startPinger(ip);
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  if (tracked) await tracked.round(); // the round a running tracker would have just done

  // As the agent's switch-out: capabilities set while the guest runs, the device-state migration
  // started with the flush and held by QEMU until the flush is done.
  await src.qmp.migrateSetCapabilities({ ...HELD_DEVICE_STATE_CAPABILITIES });
  const t0 = performance.now();
  await src.qmp.stop();
  const tStopped = performance.now();
  const held = startHeldDeviceStateMigration(src.qmp, uri);
  held.catch(() => undefined);
  const flushedBytes = tracked ? (await tracked.round()).bytes : await syncDifferingPages(srcRam.procFdPath, image, def.memorySizeBytes);
  const tFlushed = performance.now();
  // Tracking stays armed through the device state and the resume, as in the agent.
  const cpu0 = [cpuMs(src.pid), cpuMs(shadow.pid)];
  const mig = await (await held).proceed();
  await waitIncomingLoaded(shadow.qmp, 10000, 50);
  const tLoaded = performance.now();
  const cpuSrc = cpuMs(src.pid) - cpu0[0];
  const cpuDst = cpuMs(shadow.pid) - cpu0[1];
  const verifyStart = monoMs();
  const cmp = await compareRam(srcRam.procFdPath, image, def.memorySizeBytes);
  const verifyWindow: [number, number] = [verifyStart, monoMs()];
  const capture = b.capture ? await TapCapture.start(b.lab, place.ns, place.tap, path.join(b.workDir, `${place.tag}.pcap`)) : undefined;
  const { tCont, tRun, runAtMs, runAtUnixMs, faultsAfterResume } = await resumeCounting(shadow);
  const continued = await checkContinued(b, ip, before);
  const fl = await faultsAfterResume();
  const gap = await pinger.stop();
  // The source's tracking ends once the guest runs elsewhere (the agent stops replication after
  // the commit, on the source's host): its uffd-wp teardown over all of RAM is off the client's path.
  tracked?.close();
  const cap = await capture?.summary(runAtUnixMs, GUEST_PORT);
  await b.retire(src);
  const pauseMs = tLoaded - t0 + (tRun - tCont);
  const gapAfterResumeMs = firstAnswerAfter(gap, runAtMs);
  // Where the longest silence sat: its start against the stop, its end against the resume.
  const stopAtMs = runAtMs - (tRun - t0);
  const longest = gap.gaps.reduce<[number, number] | undefined>((m, g) => (!m || g[1] - g[0] > m[1] - m[0] ? g : m), undefined);
  const longestText = longest ? `; longest silence from ${(stopAtMs - longest[0]).toFixed(0)} ms before the stop to ${(longest[1] - runAtMs).toFixed(0)} ms after the resume` : '';
  return {
    result: {
      ok: continued && cmp.differingPages === 0,
      commandToRunningMs: pauseMs,
      pauseMs,
      bytesSent: flushedBytes + mig.ramTransferredBytes,
      ramDifferingPages: cmp.differingPages,
      guestContinued: continued,
      longestGapMs: longestGapExcluding(gap, verifyWindow),
      firstAnswerAfterResumeMs: gapAfterResumeMs,
      warmBytesPerSecond,
      breakdown: `stop ${(tStopped - t0).toFixed(1)} ms, final flush (${tracked ? `${tracked.trackerName} tracker` : 'stand-in: full compare'}) ${(tFlushed - tStopped).toFixed(1)} ms (${(flushedBytes / 1024) | 0} KiB), device state ${(tLoaded - tFlushed).toFixed(1)} ms (CPU: source ${cpuSrc.toFixed(1)} ms, destination ${cpuDst.toFixed(1)} ms; source done after ${mig.elapsedMs.toFixed(1)} ms; QEMU: total ${mig.totalTimeMs ?? '-'} ms, downtime ${mig.downtimeMs ?? '-'} ms), resume ${(tRun - tCont).toFixed(1)} ms; first answer ${gapAfterResumeMs.toFixed(0)} ms after the resume; ${fl.minor} minor / ${fl.major} major faults in the ${FAULT_WINDOW_MS} ms after it; RAM compare (guest paused, not counted) ${(verifyWindow[1] - verifyWindow[0]).toFixed(0)} ms${longestText}${captureText(cap)}`,
    },
    running: shadow,
  };
}

/** Minor and major page faults of `pid` so far (/proc/PID/stat fields 10 and 12). */
function faults(pid: number): { minor: number; major: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { minor: Number(f[7]), major: Number(f[9]) };
  } catch {
    return { minor: NaN, major: NaN };
  }
}

/** CPU time all of `pid`'s threads have used so far, in ms (schedstat: nanosecond resolution). */
function cpuMs(pid: number): number {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    return Math.round(ns / 1e5) / 10;
  } catch {
    return NaN;
  }
}

/** How long after `runAt` (monotonic ms) the client got its first answer, from the prober's silences. */
function captureText(c: TapCaptureSummary | undefined): string {
  if (!c) return '';
  const r = c.rarpMs.map((x) => x.toFixed(1)).join(', ');
  return `; tap capture (ms after the resume): RARP at [${r}], ${c.probesQueuedBeforeResume} probes queued while paused, first probe in ${c.firstProbeToGuestMs?.toFixed(1)}, first answer out ${c.firstAnswerFromGuestMs?.toFixed(1)} (${c.probesToGuestBeforeFirstAnswer} probes in before it)`;
}

function firstAnswerAfter(p: PingerResult, runAtMs: number): number {
  const lastGap = p.gaps.filter(([start]) => start <= runAtMs).at(-1);
  return lastGap && lastGap[1] > runAtMs ? lastGap[1] - runAtMs : 0;
}

/**
 * Resumes the guest on `dst` and counts the destination QEMU's page faults over the first
 * FAULT_WINDOW_MS of its run (what a cold mapping of guest RAM costs).
 */
async function resumeCounting(dst: QemuProcess): Promise<{ tCont: number; tRun: number; runAtMs: number; runAtUnixMs: number; faultsAfterResume: () => Promise<{ minor: number; major: number }> }> {
  const f0 = faults(dst.pid);
  const tCont = performance.now();
  await resumeGuest(dst.qmp);
  const tRun = performance.now();
  const runAtUnixMs = performance.timeOrigin + tRun;
  const runAtMs = monoMs();
  const later = new Promise<{ minor: number; major: number }>((r) =>
    setTimeout(() => {
      const f1 = faults(dst.pid);
      r({ minor: f1.minor - f0.minor, major: f1.major - f0.major });
    }, FAULT_WINDOW_MS),
  );
  return { tCont, tRun, runAtMs, runAtUnixMs, faultsAfterResume: () => later };
}

/** The pinger's clock (monotonic, shared by all processes). */
function monoMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

function fmt(v: number | undefined, digits = 1): number | string {
  return v === undefined ? '-' : Number(v.toFixed(digits));
}

async function main(): Promise<void> {
  if (!isRoot()) {
    console.error('vm-switchover needs root (namespaces, taps)');
    process.exit(2);
  }
  execFileSync('qemu-system-x86_64', ['--version'], { stdio: 'ignore' });
  setRootLogger(silentLogger());
  const memoryMiB = Number(arg('memory-mib', '256'));
  const workloads = arg('workloads', 'light,heavy').split(',') as WorkloadName[];
  // For investigating one side: `--cases umbra` skips QEMU's two migrations (no comparison then).
  const cases = arg('cases', 'qemu,umbra,umbra-cluster').split(',');
  for (const c of cases) if (!['qemu', 'umbra', 'umbra-cluster'].includes(c)) throw new Error(`unknown case ${c} (qemu, umbra, umbra-cluster)`);
  if (cases.includes('qemu') && !cases.includes('umbra')) throw new Error('--cases qemu needs umbra (the guest they share ends on it)');
  const image = await buildGuestImage();
  const b = new Bench();
  const figures: Record<string, number | string | boolean> = { memory_mib: memoryMiB };
  const releaseCleanup = cleanupOnInterrupt(() => b.cleanup());
  try {
    await b.setUp();
    for (const w of workloads) {
      if (!(w in WORKLOADS)) throw new Error(`unknown workload ${w} (light, heavy)`);
      const def = parseVmDefinition({
        id: `bench-${w}`,
        memorySizeBytes: memoryMiB * 1024 * 1024,
        boot: { kind: 'kernel', kernelPath: image.kernelPath, initrdPath: image.initrdPath, append: guestKernelAppend({ port: GUEST_PORT, fillPct: FILL_PCT, ...WORKLOADS[w] }) },
        nics: [{ mac: GUEST_MAC, tapName: 'placeholder', netdevId: 'net0' }],
        ...b.paths(`boot-${w}`),
      });
      let params: Record<string, unknown> = {};
      let baselineGapMs: number | undefined;
      const notRun = { ok: false, note: 'not run (--cases)' } as CaseResult;
      let qDefault = { result: notRun };
      let qUnlimited = { result: notRun };
      let umbra = { result: notRun };
      if (cases.includes('umbra')) {
        const { proc, ip } = await bootGuest(b, def);
        let current = proc;
        params = await current.qmp.execute<Record<string, unknown>>('query-migrate-parameters');
        // The guest's own jitter under TCG with the writer running, for reading the gap figures.
        const quiet = b.startPinger(ip);
        await new Promise((r) => setTimeout(r, BASELINE_MS));
        baselineGapMs = longestGapExcluding(await quiet.stop(), undefined);
        const skipped = { result: notRun, running: current };
        const d = cases.includes('qemu') ? await qemuLiveMigration(b, def, current, ip, false) : skipped;
        current = d.running;
        const u = cases.includes('qemu') ? await qemuLiveMigration(b, def, current, ip, true) : skipped;
        current = u.running;
        const m = await umbraSwitchover(b, def, current, ip);
        current = m.running;
        await b.retire(current);
        [qDefault, qUnlimited, umbra] = [d, u, m];
      }
      // The product path, on its own cluster (the guests above are gone: one TCG guest at a time).
      const cluster: ClusterCaseResult = cases.includes('umbra-cluster')
        ? await clusterSwitchover({ memoryBytes: def.memorySizeBytes, workload: { ...WORKLOADS[w], fillPct: FILL_PCT }, periodMs: PING_PERIOD_MS, proberBinary: b.prober, chainSourceSteps: !process.argv.includes('--cluster-unchained'), timeline: process.argv.includes('--timeline'), firstAnswerAfter, log: (l) => console.log(`  ${l}`) }).catch((err) => ({ ok: false, note: `failed: ${(err as Error).message}` }))
        : { ok: false, note: 'not run (--cases)' };

      const okRuns = [qDefault.result, qUnlimited.result].filter((r) => r.ok && r.ramDifferingPages === 0);
      const best = okRuns.sort((x, y) => (x.commandToRunningMs ?? Infinity) - (y.commandToRunningMs ?? Infinity))[0];
      const rows: BenchRow[] = [
        { metric: 'command to running (QEMU default)', ours: fmt(umbra.result.commandToRunningMs), peer: qDefault.result.ok ? fmt(qDefault.result.commandToRunningMs) : qDefault.result.ramDifferingPages ? 'lost pages' : 'failed', unit: 'ms' },
        { metric: 'command to running (QEMU unlimited)', ours: fmt(umbra.result.commandToRunningMs), peer: qUnlimited.result.ok ? fmt(qUnlimited.result.commandToRunningMs) : qUnlimited.result.ramDifferingPages ? 'lost pages' : 'failed', unit: 'ms' },
        { metric: 'CLUSTER command (TriggerMigration) to running / QEMU total (faster)', ours: fmt(cluster.commandToRunningMs), peer: best ? fmt(best.totalTimeMs) : '-', unit: 'ms', target: memoryMiB >= 1024 && w === 'heavy' ? '<= peer/20' : '' },
        { metric: 'pause / QEMU downtime (faster peer)', ours: fmt(umbra.result.pauseMs), peer: best ? fmt(best.downtimeMs) : '-', unit: 'ms', target: memoryMiB === 256 ? '<= peer' : '' },
        { metric: 'CLUSTER pause (source pause to destination running)', ours: fmt(cluster.pauseMs), peer: best ? fmt(best.downtimeMs) : '-', unit: 'ms', target: memoryMiB === 256 ? '<= peer' : '' },
        { metric: "pause / QEMU's guest pause measured as ours (STOP to destination loaded, + resume)", ours: fmt(umbra.result.pauseMs), peer: best ? fmt(best.guestPauseMs) : '-', unit: 'ms' },
        { metric: "CLUSTER pause / QEMU's guest pause measured as ours", ours: fmt(cluster.pauseMs), peer: best ? fmt(best.guestPauseMs) : '-', unit: 'ms' },
        { metric: 'bytes sent at switchover / in migration', ours: umbra.result.bytesSent ?? '-', peer: best?.bytesSent ?? '-', unit: 'B' },
        { metric: 'CLUSTER final flush bytes (replication frames) / in migration', ours: cluster.switchoverBytes ?? '-', peer: best?.bytesSent ?? '-', unit: 'B' },
        { metric: 'longest client gap (faster peer)', ours: fmt(umbra.result.longestGapMs), peer: best ? fmt(best.longestGapMs) : '-', unit: 'ms', target: '<= peer' },
        { metric: 'CLUSTER longest client gap (faster peer)', ours: fmt(cluster.longestGapMs), peer: best ? fmt(best.longestGapMs) : '-', unit: 'ms', target: '<= peer' },
        { metric: 'background bytes/s keeping the shadow warm', ours: umbra.result.warmBytesPerSecond !== undefined ? Math.round(umbra.result.warmBytesPerSecond) : 'n/a', peer: '-', unit: 'B/s' },
        { metric: 'CLUSTER background replication bytes/s', ours: cluster.warmBytesPerSecond !== undefined ? Math.round(cluster.warmBytesPerSecond) : 'n/a', peer: '-', unit: 'B/s' },
        { metric: 'longest client gap, no migration (baseline)', ours: fmt(baselineGapMs), peer: fmt(baselineGapMs), unit: 'ms' },
        { metric: 'guest RAM differing pages (default / unlimited)', ours: umbra.result.ramDifferingPages ?? '-', peer: `${qDefault.result.ramDifferingPages ?? '-'} / ${qUnlimited.result.ramDifferingPages ?? '-'}`, unit: 'pages', target: '0' },
        { metric: 'guest continued on the destination', ours: String(umbra.result.guestContinued), peer: `${qDefault.result.guestContinued ?? '-'} / ${qUnlimited.result.guestContinued ?? '-'}`, unit: '' },
        { metric: 'QEMU dirty-sync rounds (default / unlimited)', ours: '-', peer: `${qDefault.result.dirtySyncRounds ?? '-'} / ${qUnlimited.result.dirtySyncRounds ?? '-'}`, unit: '' },
      ];
      printTable(`vm-switchover: ${memoryMiB} MiB guest, ${FILL_PCT}% filled, ${w} writer (${WORKLOADS[w].memwriteMb} MiB at ${WORKLOADS[w].memwriteRateMbps || 'max'} MB/s); QEMU default max-bandwidth ${params['max-bandwidth']} B/s, downtime-limit ${params['downtime-limit']} ms`, 'qemu', rows);
      for (const [name, r] of [['qemu_default', qDefault.result], ['qemu_unlimited', qUnlimited.result]] as const) {
        if (!r.ok) console.log(`  ${name}: ${r.note}`);
        else console.log(`  ${name}: QEMU total ${r.totalTimeMs} ms, downtime ${r.downtimeMs} ms, guest pause measured as ours ${fmt(r.guestPauseMs)} ms; ${r.note}; ${r.breakdown}`);
      }
      console.log(`  umbra: ${umbra.result.breakdown ?? umbra.result.note}`);
      console.log(`  umbra-cluster: ${cluster.ok ? `command to running ${fmt(cluster.commandToRunningMs)} ms, pause ${fmt(cluster.pauseMs)} ms, longest gap ${fmt(cluster.longestGapMs)} ms, first answer ${fmt(cluster.firstAnswerAfterResumeMs, 0)} ms after the resume-ended update; ${cluster.stepsText}` : cluster.note}`);
      const key = `${w}`;
      figures[`${key}_umbra_command_to_running_ms`] = fmt(umbra.result.commandToRunningMs, 2);
      figures[`${key}_baseline_longest_gap_ms`] = fmt(baselineGapMs, 2);
      figures[`${key}_cluster_umbra_ok`] = cluster.ok;
      if (cluster.ok) {
        figures[`${key}_cluster_umbra_command_to_running_ms`] = fmt(cluster.commandToRunningMs, 2);
        figures[`${key}_cluster_umbra_accept_ms`] = fmt(cluster.acceptMs, 2);
        figures[`${key}_cluster_umbra_pause_ms`] = fmt(cluster.pauseMs, 2);
        figures[`${key}_cluster_umbra_total_ms`] = fmt(cluster.totalMs, 2);
        figures[`${key}_cluster_umbra_longest_gap_ms`] = fmt(cluster.longestGapMs, 2);
        figures[`${key}_cluster_umbra_first_answer_after_resume_ms`] = fmt(cluster.firstAnswerAfterResumeMs, 2);
        figures[`${key}_cluster_umbra_switchover_bytes`] = cluster.switchoverBytes ?? -1;
        figures[`${key}_cluster_umbra_warm_bytes_per_s`] = cluster.warmBytesPerSecond !== undefined ? Math.round(cluster.warmBytesPerSecond) : -1;
        for (const st of cluster.steps ?? []) figures[`${key}_cluster_umbra_step_${st.step.replace(/-/g, '_')}_ms`] = fmt(st.duration_ms, 2);
      }
      figures[`${key}_umbra_pause_ms`] = fmt(umbra.result.pauseMs, 2);
      figures[`${key}_umbra_switchover_bytes`] = umbra.result.bytesSent ?? -1;
      figures[`${key}_umbra_warm_bytes_per_s`] = umbra.result.warmBytesPerSecond !== undefined ? Math.round(umbra.result.warmBytesPerSecond) : -1;
      figures[`${key}_umbra_longest_gap_ms`] = fmt(umbra.result.longestGapMs, 2);
      figures[`${key}_umbra_first_answer_after_resume_ms`] = fmt(umbra.result.firstAnswerAfterResumeMs, 2);
      figures[`${key}_umbra_ram_differing_pages`] = umbra.result.ramDifferingPages ?? -1;
      for (const [name, r] of [['qemu_default', qDefault.result], ['qemu_unlimited', qUnlimited.result]] as const) {
        figures[`${key}_${name}_ok`] = r.ok;
        figures[`${key}_${name}_ram_differing_pages`] = r.ramDifferingPages ?? -1;
        if (!r.ok) continue;
        figures[`${key}_${name}_command_to_running_ms`] = fmt(r.commandToRunningMs, 2);
        figures[`${key}_${name}_total_time_ms`] = r.totalTimeMs ?? -1;
        figures[`${key}_${name}_downtime_ms`] = r.downtimeMs ?? -1;
        figures[`${key}_${name}_guest_pause_ms`] = r.guestPauseMs !== undefined ? fmt(r.guestPauseMs, 2) : -1;
        figures[`${key}_${name}_bytes`] = r.bytesSent ?? -1;
        figures[`${key}_${name}_longest_gap_ms`] = fmt(r.longestGapMs, 2);
        figures[`${key}_${name}_first_answer_after_resume_ms`] = fmt(r.firstAnswerAfterResumeMs, 2);
      }
    }
  } finally {
    releaseCleanup();
    await b.cleanup();
  }
  printFigures(figures);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

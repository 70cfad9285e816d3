// The client that probes a guest, for the vm-switchover bench and the lab: the ip-switchover
// bench's native prober (udp-prober.c) sending a numbered datagram to the guest every period, run
// SCHED_FIFO in the client namespace, its report (probe-report.ts) on the monotonic clock the other
// processes time with. Native because a Node prober spent a quarter of a core in the 100 ms after
// a resume on a 2-core machine (perf sched), CPU the resumed TCG guest waits for, and it timed each
// echo when its own event loop got to it; the kernel's receive time does not depend on when the
// prober runs.
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { createInterface } from 'node:readline';
import { waitFor } from './netns';
import { probeReport, type ProbeAnswer, type ProbeReport } from './probe-report';

export { buildProber as buildGuestProber } from '../../bench/ip-switchover/udp-prober-client';
export type { ProbeReport } from './probe-report';

/** Low SCHED_FIFO priority: kernel threads stay above it; the processes under test below. */
const PROBER_FIFO_PRIORITY = 10;
const STOP_TIMEOUT_MS = 10000;

/**
 * The report from the prober's output lines after "stop": "stopped <realtime ns> <monotonic ns>",
 * "answer <realtime ns> <seq> [tag]" each, "end <sent>". Answers move to the monotonic clock by
 * the offset of the stopped line. Undefined until the end line is there. Pure.
 */
export function readGuestProberLines(lines: readonly string[], periodMs: number): ProbeReport | undefined {
  let monoMinusReal: bigint | undefined;
  let stoppedAtMs = 0;
  const raw: Array<[bigint, number]> = [];
  for (const line of lines) {
    const [kind, a, b] = line.split(' ');
    if (kind === 'stopped') {
      monoMinusReal = BigInt(b) - BigInt(a);
      stoppedAtMs = Number(BigInt(b)) / 1e6;
    } else if (kind === 'answer') {
      raw.push([BigInt(a), Number(b)]);
    } else if (kind === 'end') {
      if (monoMinusReal === undefined) throw new Error('guest prober: no "stopped" line before "end"');
      const offset = monoMinusReal;
      const answers: ProbeAnswer[] = raw.map(([real, seq]) => ({ atMs: Number(real + offset) / 1e6, seq }));
      return probeReport(answers, Number(a), periodMs, stoppedAtMs);
    }
  }
  return undefined;
}

export interface GuestProber {
  child: ChildProcess;
  /** Stops sending, waits drainMs for late echoes, and reports. */
  stop(): Promise<ProbeReport>;
}

/** Starts a process in a network namespace (NetnsLab.spawn, or the lab's own). */
export interface NamespaceSpawner {
  spawn(ns: string, cmd: string, args: string[], options: SpawnOptions): ChildProcess;
}

export function startGuestProber(spawner: NamespaceSpawner, ns: string, binary: string, ip: string, port: number, periodMs: number, drainMs: number): GuestProber {
  const args = ['-f', String(PROBER_FIFO_PRIORITY), binary, ip, String(port), String(periodMs * 1000), String(drainMs * 1000)];
  const child = spawner.spawn(ns, 'chrt', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: string[] = [];
  createInterface({ input: child.stdout! }).on('line', (l) => lines.push(l));
  return {
    child,
    stop: async () => {
      child.stdin!.write('stop\n');
      return waitFor('guest prober report', async () => readGuestProberLines(lines, periodMs), STOP_TIMEOUT_MS, 20);
    },
  };
}

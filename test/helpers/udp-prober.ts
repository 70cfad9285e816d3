// A client probing a guest (the lab's, and the vm-switchover bench's), run in the client's
// namespace: sends a numbered UDP datagram to the guest every PERIOD_MS (the guest echoes it), and
// on "stop" (stdin) stops sending, waits DRAIN_MS for late echoes, then prints one JSON line: probes
// sent and answered, the lost ones, the longest silence between two answers and every notable one
// (start and end on the monotonic clock every process shares, so callers can place them).
// Usage: node udp-prober.js HOST PORT [PERIOD_MS] [DRAIN_MS]
import { createSocket } from 'node:dgram';
import { createInterface } from 'node:readline';

const DEFAULT_DRAIN_MS = 500;
/** Silences longer than this are listed, so a caller can discount windows it caused itself. */
const NOTABLE_GAP_MS = 5;
const MAX_GAPS_KEPT = 10000;

export interface ProbeReport {
  periodMs: number;
  sent: number;
  /** Distinct probes answered. */
  answered: number;
  /** Echoes received (duplicates included). */
  received: number;
  lost: number;
  /** Sequence ranges of the lost probes, "a-b" or "a". */
  lostRanges: string[];
  maxGapMs: number;
  maxGapStartMs: number;
  maxGapEndMs: number;
  /** Silence still open when sending stopped (a guest that never came back). */
  openGapMs: number;
  /** Every silence longer than NOTABLE_GAP_MS, as [startMs, endMs]. */
  gaps: Array<[number, number]>;
}

/** "3-5", "9" for [3, 4, 5, 9]. Pure. */
export function ranges(sorted: number[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    out.push(i === j ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return out;
}

function main(): void {
  const [host, portText, periodText] = process.argv.slice(2);
  const port = Number(portText);
  const periodMs = Number(periodText ?? 2);
  const drainMs = Number(process.argv[5] ?? DEFAULT_DRAIN_MS);
  if (!host || !Number.isInteger(port) || !(periodMs > 0) || !(drainMs >= 0)) {
    process.stderr.write('usage: udp-prober HOST PORT [PERIOD_MS] [DRAIN_MS]\n');
    process.exit(2);
  }
  const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;
  const sock = createSocket('udp4');
  const answered = new Set<number>();
  let sent = 0;
  let received = 0;
  const gaps: Array<[number, number]> = [];
  let lastAt: number | undefined;
  let maxGap = { ms: 0, start: 0, end: 0 };

  sock.on('message', (msg) => {
    if (msg.length < 4) return;
    const at = nowMs();
    answered.add(msg.readUInt32BE(0));
    received++;
    if (lastAt !== undefined && at - lastAt > NOTABLE_GAP_MS && gaps.length < MAX_GAPS_KEPT) gaps.push([lastAt, at]);
    if (lastAt !== undefined && at - lastAt > maxGap.ms) maxGap = { ms: at - lastAt, start: lastAt, end: at };
    lastAt = at;
  });

  sock.bind(0, () => {
    const payload = Buffer.alloc(8);
    const timer = setInterval(() => {
      payload.writeUInt32BE(sent++, 0);
      sock.send(payload, port, host);
    }, periodMs);
    createInterface({ input: process.stdin }).on('line', (line) => {
      if (line.trim() !== 'stop') return;
      clearInterval(timer);
      setTimeout(() => {
        const lost: number[] = [];
        for (let i = 0; i < sent; i++) if (!answered.has(i)) lost.push(i);
        // A silence still open at the end counts too (a guest that never came back).
        const stoppedAt = nowMs() - drainMs;
        const open = lastAt === undefined ? 0 : Math.max(0, stoppedAt - lastAt);
        if (open > maxGap.ms) maxGap = { ms: open, start: lastAt ?? 0, end: stoppedAt };
        const report: ProbeReport = {
          periodMs,
          sent,
          answered: answered.size,
          received,
          lost: lost.length,
          lostRanges: ranges(lost).slice(0, 20),
          maxGapMs: maxGap.ms,
          maxGapStartMs: maxGap.start,
          maxGapEndMs: maxGap.end,
          openGapMs: open,
          gaps,
        };
        process.stdout.write(JSON.stringify(report) + '\n');
        sock.close(() => process.exit(0));
      }, drainMs);
    });
    process.stdout.write('started\n');
  });
}

if (require.main === module) main();

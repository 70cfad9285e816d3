// A client probing a guest (the lab's), run in the client's namespace: sends a numbered UDP
// datagram to the guest every PERIOD_MS (the guest echoes it), and on "stop" (stdin) stops
// sending, waits DRAIN_MS for late echoes, then prints one JSON line (probe-report.ts): probes
// sent and answered, the lost ones, the longest silence between two answers and every notable one
// (start and end on the monotonic clock every process shares, so callers can place them).
// The vm-switchover bench probes with the native prober instead (bench/vm-switchover/guest-prober.ts).
// Usage: node udp-prober.js HOST PORT [PERIOD_MS] [DRAIN_MS]
import { createSocket } from 'node:dgram';
import { createInterface } from 'node:readline';
import { probeReport, type ProbeAnswer } from './probe-report';

export type { ProbeReport } from './probe-report';

const DEFAULT_DRAIN_MS = 500;

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
  const answers: ProbeAnswer[] = [];
  let sent = 0;

  sock.on('message', (msg) => {
    if (msg.length < 4) return;
    answers.push({ atMs: nowMs(), seq: msg.readUInt32BE(0) });
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
      const stoppedAt = nowMs();
      setTimeout(() => {
        process.stdout.write(JSON.stringify(probeReport(answers, sent, periodMs, stoppedAt)) + '\n');
        sock.close(() => process.exit(0));
      }, drainMs);
    });
    process.stdout.write('started\n');
  });
}

if (require.main === module) main();

// UDP prober run in the client namespace: sends one datagram every PERIOD_US to the service
// address from a tight loop timed with hrtime, timestamps every answer, and on "stop" (stdin)
// prints one JSON line with the longest gap between answers.
import { createSocket } from 'node:dgram';
import { createInterface } from 'node:readline';
import { longestGap, type Answer } from './gap-stats';

const [target, portText, periodUsText] = process.argv.slice(2);
const port = Number(portText);
const periodNs = BigInt(Math.round(Number(periodUsText ?? '1000') * 1000));
const sock = createSocket('udp4');
const answers: Answer[] = [];
const t0 = process.hrtime.bigint();
const nowMs = () => Number(process.hrtime.bigint() - t0) / 1e6;
let sent = 0;
let stopped = false;

sock.on('message', (msg) => {
  answers.push({ atMs: nowMs(), tag: msg.subarray(8).toString() });
});

sock.bind(0, () => {
  let next = process.hrtime.bigint();
  const payload = Buffer.alloc(8);
  // A setImmediate spin: sends stay on a 1 ms grid and answers are read between iterations,
  // where a timer-driven loop would add a millisecond of jitter of its own.
  const tick = () => {
    if (stopped) return;
    const now = process.hrtime.bigint();
    if (now >= next) {
      payload.writeUInt32BE(sent++, 0);
      sock.send(payload, port, target);
      next += periodNs;
      if (now - next > periodNs * 10n) next = now + periodNs; // fell far behind: do not burst to catch up
    }
    setImmediate(tick);
  };
  tick();
  process.stdout.write('started\n');
});

createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() !== 'stop' || stopped) return;
  stopped = true;
  const stats = longestGap(answers);
  const byTag: Record<string, number> = {};
  for (const a of answers) byTag[a.tag] = (byTag[a.tag] ?? 0) + 1;
  process.stdout.write(JSON.stringify({ sent, ...stats, byTag, lastTag: answers.at(-1)?.tag }) + '\n');
  sock.close(() => process.exit(0));
});

// Client run inside the lab's client namespace: sends a numbered datagram to the guest every
// PERIOD_MS, timestamps every echo, and on "stop" (stdin) prints one JSON line with the count
// of answers, the longest silence between two consecutive answers and every notable silence.
// Usage: node udp-pinger.js HOST PORT [PERIOD_MS]
import { createSocket } from 'node:dgram';
import { createInterface } from 'node:readline';

const [host, portText, periodText] = process.argv.slice(2);
const port = Number(portText);
const periodMs = Number(periodText ?? 1);
const sock = createSocket('udp4');
// Absolute monotonic ms (the same clock in every process), so the bench can place gaps on its timeline.
const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;
let sent = 0;
let received = 0;
let lastAtMs: number | undefined;
let maxGapMs = 0;
let maxGapEndMs = 0;
/** Every silence longer than NOTABLE_GAP_MS, as [startMs, endMs], so the caller can discount its own pauses. */
const NOTABLE_GAP_MS = 5;
const MAX_GAPS_KEPT = 10000;
const gaps: Array<[number, number]> = [];

sock.on('message', () => {
  const at = nowMs();
  received++;
  if (lastAtMs !== undefined && at - lastAtMs > NOTABLE_GAP_MS && gaps.length < MAX_GAPS_KEPT) gaps.push([lastAtMs, at]);
  if (lastAtMs !== undefined && at - lastAtMs > maxGapMs) {
    maxGapMs = at - lastAtMs;
    maxGapEndMs = at;
  }
  lastAtMs = at;
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
    // The gap still open at the end counts too (a guest that never came back).
    const openGap = lastAtMs === undefined ? 0 : nowMs() - lastAtMs;
    process.stdout.write(JSON.stringify({ sent, received, maxGapMs: Math.max(maxGapMs, openGap), maxGapEndMs, openGapMs: openGap, gaps }) + '\n');
    sock.close(() => process.exit(0));
  });
  process.stdout.write('started\n');
});

// Tiny CLI run inside a client namespace: sends one UDP datagram to the guest and prints the
// first answer (or nothing) as one JSON line. Usage: node udp-probe.js HOST PORT PAYLOAD TIMEOUT_MS
import { createSocket } from 'node:dgram';

function main(): void {
  const [host, portText, payload, timeoutText] = process.argv.slice(2);
  const port = Number(portText);
  const timeoutMs = Number(timeoutText ?? 1000);
  if (!host || !Number.isInteger(port) || payload === undefined) {
    process.stderr.write('usage: udp-probe HOST PORT PAYLOAD [TIMEOUT_MS]\n');
    process.exit(2);
  }
  const sock = createSocket('udp4');
  const started = process.hrtime.bigint();
  const timer = setTimeout(() => {
    process.stdout.write(JSON.stringify({ ok: false }) + '\n');
    sock.close();
  }, timeoutMs);
  sock.on('message', (msg) => {
    clearTimeout(timer);
    const rttMs = Number(process.hrtime.bigint() - started) / 1e6;
    process.stdout.write(JSON.stringify({ ok: true, reply: msg.toString('utf8'), rttMs }) + '\n');
    sock.close();
  });
  sock.send(payload, port, host);
}

main();

// UDP echo responder run in a bench "host" namespace: answers every datagram with the payload
// followed by this host's tag, from the service address (bound with ip_nonlocal_bind).
import { createSocket } from 'node:dgram';

const [bindAddress, portText, tag] = process.argv.slice(2);
const sock = createSocket('udp4');
const tagBytes = Buffer.from(tag ?? '?');
sock.on('message', (msg, rinfo) => {
  sock.send(Buffer.concat([msg.subarray(0, 8), tagBytes]), rinfo.port, rinfo.address);
});
sock.on('error', (err) => {
  process.stderr.write(`responder: ${err.message}\n`);
  process.exit(1);
});
sock.bind(Number(portText), bindAddress, () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => sock.close(() => process.exit(0)));

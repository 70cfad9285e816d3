// UDP echo responder run in a bench "host" namespace: answers every datagram with the payload
// followed by this host's tag, from the service address (bound with ip_nonlocal_bind).
// Before it says "ready" it runs its answer path on loopback (WARM_UP_DATAGRAMS through the same
// handler), so the first datagram of a switchover does not pay the responder's own first-call
// costs (lazy compilation, first send): the stand-in service is a running, warm service, for
// every method alike. Nothing of the network path (neighbour entries, routes) is warmed.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';

const WARM_UP_DATAGRAMS = 200;

const [bindAddress, portText, tag] = process.argv.slice(2);
const tagBytes = Buffer.from(tag ?? '?');

function answer(sock: Socket, msg: Buffer, rinfo: RemoteInfo): void {
  sock.send(Buffer.concat([msg.subarray(0, 8), tagBytes]), rinfo.port, rinfo.address);
}

/** Sends WARM_UP_DATAGRAMS through a loopback socket answered by answer(); resolves when all came back. */
function warmUp(): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = createSocket('udp4');
    const client = createSocket('udp4');
    let back = 0;
    server.on('message', (msg, rinfo) => answer(server, msg, rinfo));
    client.on('message', () => {
      if (++back < WARM_UP_DATAGRAMS) return void client.send(Buffer.alloc(8), server.address().port, '127.0.0.1');
      server.close();
      client.close();
      resolve();
    });
    server.on('error', reject);
    client.on('error', reject);
    server.bind(0, '127.0.0.1', () => client.send(Buffer.alloc(8), server.address().port, '127.0.0.1'));
  });
}

const sock = createSocket('udp4');
sock.on('message', (msg, rinfo) => answer(sock, msg, rinfo));
sock.on('error', (err) => {
  process.stderr.write(`responder: ${err.message}\n`);
  process.exit(1);
});
warmUp()
  .then(() => sock.bind(Number(portText), bindAddress, () => process.stdout.write('ready\n')))
  .catch((err: Error) => {
    process.stderr.write(`responder warm-up: ${err.message}\n`);
    process.exit(1);
  });
process.on('SIGTERM', () => sock.close(() => process.exit(0)));

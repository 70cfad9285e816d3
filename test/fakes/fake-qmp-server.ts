// A scripted fake QEMU monitor on a unix socket for unit tests of QMP users: it greets (unless
// told not to), answers qmp_capabilities, and hands every other command to the test's handler.
import { createServer, type Server, type Socket } from 'node:net';

export type QmpCommand = { execute: string; id: string; arguments?: Record<string, unknown> };
export type QmpHandler = (cmd: QmpCommand, sock: Socket) => void;

const GREETING = '{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": []}}\r\n';

export interface FakeQmpServer {
  server: Server;
  /** Connections accepted, in order. */
  sockets: Socket[];
  /** Commands received (execute names), qmp_capabilities included. */
  received: string[];
}

/** Listens on `socketPath`; the caller closes `server`. */
export async function startFakeQmpServer(socketPath: string, handler: QmpHandler, opts: { greet?: boolean } = {}): Promise<FakeQmpServer> {
  const sockets: Socket[] = [];
  const received: string[] = [];
  const server = createServer((sock) => {
    sockets.push(sock);
    if (opts.greet !== false) sock.write(GREETING);
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const cmd = JSON.parse(buf.slice(0, nl)) as QmpCommand;
        buf = buf.slice(nl + 1);
        received.push(cmd.execute);
        if (cmd.execute === 'qmp_capabilities') sock.write(JSON.stringify({ return: {}, id: cmd.id }) + '\r\n');
        else handler(cmd, sock);
      }
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(socketPath, r));
  return { server, sockets, received };
}

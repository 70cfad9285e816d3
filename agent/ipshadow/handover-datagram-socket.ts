// UDP for hand-over datagrams: bound on the agent's gRPC listen address and port (a source agent
// sends to the endpoint it dials for gRPC, over UDP), and the socket the source sends from and
// hears the destination's answer on. Binding may fail (the port taken over UDP by something else):
// the agent then only sends, and hand-overs to it go through HandOverIp alone.
import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import { errorMessage } from '../../shared/errors';
import { splitHostPort } from '../../shared/host-port';

export interface DatagramPeer {
  address: string;
  port: number;
}

export type DatagramHandler = (message: Buffer, from: DatagramPeer) => void;

type Family = 'udp4' | 'udp6';
const familyOf = (host: string): Family => (isIPv6(host) ? 'udp6' : 'udp4');

export class HandoverDatagramSocket {
  private readonly sockets = new Map<Family, dgram.Socket>();
  /** "host:port" received on, or undefined (see bindError). */
  bound?: string;
  /** Why nothing is received, when it is not. */
  bindError?: string;
  private closed = false;

  private constructor(private readonly onMessage: DatagramHandler) {}

  static async open(listen: string, onMessage: DatagramHandler): Promise<HandoverDatagramSocket> {
    const s = new HandoverDatagramSocket(onMessage);
    const { host, port } = splitHostPort(listen);
    if (port === 0) {
      s.bindError = 'the agent listens on any free port (0), which peers cannot know for UDP';
      return s;
    }
    const family = familyOf(host);
    const sock = s.socket(family);
    try {
      await new Promise<void>((resolve, reject) => {
        sock.once('error', reject);
        sock.bind({ address: host, port, exclusive: true }, () => {
          sock.off('error', reject);
          resolve();
        });
      });
      s.bound = `${family === 'udp6' ? `[${host}]` : host}:${port}`;
    } catch (err) {
      s.sockets.delete(family);
      sock.close();
      s.bindError = `cannot receive on udp ${listen}: ${errorMessage(err)}`;
    }
    return s;
  }

  private socket(family: Family): dgram.Socket {
    let sock = this.sockets.get(family);
    if (!sock) {
      sock = dgram.createSocket({ type: family });
      sock.on('message', (m, r) => this.onMessage(m, { address: r.address, port: r.port }));
      // A send error reaches its callback; an ICMP-reported one (nobody listening) is nothing to act on.
      sock.on('error', () => undefined);
      this.sockets.set(family, sock);
    }
    return sock;
  }

  /** Sends `message` to `endpoint` ("host:port" or "[v6]:port"). */
  send(endpoint: string, message: Buffer): Promise<void> {
    const { host, port } = splitHostPort(endpoint);
    return this.sendTo({ address: host, port }, message);
  }

  sendTo(peer: DatagramPeer, message: Buffer): Promise<void> {
    if (this.closed) return Promise.reject(new Error('hand-over datagram socket is closed'));
    return new Promise((resolve, reject) => this.socket(familyOf(peer.address)).send(message, peer.port, peer.address, (err) => (err ? reject(err) : resolve())));
  }

  close(): void {
    this.closed = true;
    for (const s of this.sockets.values()) s.close();
    this.sockets.clear();
  }
}

// Client of a Kea daemon's UNIX control socket: one JSON command per connection, the reply read
// until the daemon closes the socket. Result codes: 0 success, 1 error, 2 unsupported, 3 empty.
import net from 'node:net';
import { UmbraError, UnavailableError } from '../../shared/errors';

export const KEA_RESULT_SUCCESS = 0;
export const KEA_RESULT_EMPTY = 3;
const DEFAULT_TIMEOUT_MS = 5000;
/** Kea replies are small; a larger one means something is wrong. */
const MAX_REPLY_BYTES = 4 * 1024 * 1024;

export interface KeaReply {
  result: number;
  text?: string;
  arguments?: Record<string, unknown>;
}

/** Kea answered with an error result (not success, not empty). */
export class KeaCommandError extends UmbraError {
  constructor(command: string, result: number, text: string) {
    super(result === 2 ? 'UNIMPLEMENTED' : 'FAILED_PRECONDITION', `kea ${command} failed (result ${result}): ${text}`);
    this.name = 'KeaCommandError';
  }
}

export class KeaControlClient {
  constructor(private readonly socketPath: string, private readonly timeoutMs = DEFAULT_TIMEOUT_MS) {}

  /** Sends `command`; resolves with the reply (result success or empty), rejects on error results. */
  command(command: string, args?: Record<string, unknown>): Promise<KeaReply> {
    return new Promise((resolve, reject) => {
      const sock = net.createConnection(this.socketPath);
      const chunks: Buffer[] = [];
      let size = 0;
      const fail = (err: Error) => {
        sock.destroy();
        reject(err);
      };
      sock.setTimeout(this.timeoutMs, () => fail(new UnavailableError(`kea control socket ${this.socketPath}: no reply to ${command} in ${this.timeoutMs} ms`)));
      sock.on('connect', () => sock.write(JSON.stringify({ command, ...(args ? { arguments: args } : {}) })));
      sock.on('data', (d) => {
        size += d.length;
        if (size > MAX_REPLY_BYTES) return fail(new UnavailableError(`kea reply to ${command} exceeds ${MAX_REPLY_BYTES} bytes`));
        chunks.push(d);
        // Kea may keep the socket open; a complete JSON document is the end of the reply.
        tryParse();
      });
      sock.on('end', () => tryParse(true));
      sock.on('error', (err) => fail(new UnavailableError(`kea control socket ${this.socketPath}: ${err.message}`, { cause: err })));
      const tryParse = (final = false) => {
        let reply: KeaReply | KeaReply[];
        try {
          reply = JSON.parse(Buffer.concat(chunks).toString('utf8')) as KeaReply | KeaReply[];
        } catch {
          if (final) fail(new UnavailableError(`kea reply to ${command} is not JSON`));
          return;
        }
        sock.end();
        const r = Array.isArray(reply) ? reply[0] : reply;
        if (!r || typeof r.result !== 'number') return reject(new UnavailableError(`kea reply to ${command} has no result`));
        if (r.result !== KEA_RESULT_SUCCESS && r.result !== KEA_RESULT_EMPTY) return reject(new KeaCommandError(command, r.result, r.text ?? ''));
        resolve(r);
      };
    });
  }
}

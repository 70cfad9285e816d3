// QMP client over a unix socket: handshake, commands with per-command deadlines and typed
// errors, and QEMU's asynchronous events as async iterables.
import { Socket, createConnection } from 'node:net';
import { createLogger, isTracing, type Logger } from '../../shared/log';
import { QmpDisconnectedError, QmpError, QmpTimeoutError, QmpWaitCancelledError } from './qmp-errors';
import { QmpStreamDecoder, encodeQmpCommand, type QmpEvent, type QmpGreeting, type QmpMessage } from './qmp-protocol';
import type { QmpEventName, QmpMemdevInfo, QmpMigrationInfo, QmpStatusInfo } from './qmp-types';

export const DEFAULT_QMP_CONNECT_TIMEOUT_MS = 5000;
export const DEFAULT_QMP_COMMAND_TIMEOUT_MS = 10000;
/** Events kept per listener that has not read them yet; older ones are dropped and counted. */
const EVENT_QUEUE_LIMIT = 1000;

let logger: Logger | undefined;
/** Created on first use, so a program can install its root logger after importing this file. */
function log(): Logger {
  return (logger ??= createLogger('qmp'));
}

export interface QmpClientOptions {
  connectTimeoutMs?: number;
  /** Default deadline of every command; execute() can override it. */
  commandTimeoutMs?: number;
}

interface Pending {
  command: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

interface EventListener {
  queue: QmpEvent[];
  wake?: () => void;
  closed: boolean;
}

export class QmpClient {
  readonly socketPath: string;
  readonly greeting: QmpGreeting;
  /** Events dropped because a listener fell more than EVENT_QUEUE_LIMIT behind. */
  droppedEvents = 0;
  private readonly socket: Socket;
  private readonly decoder: QmpStreamDecoder;
  private readonly pending = new Map<string, Pending>();
  private readonly listeners = new Set<EventListener>();
  private readonly commandTimeoutMs: number;
  private nextId = 1;
  private closedError?: QmpDisconnectedError;

  private constructor(socketPath: string, socket: Socket, decoder: QmpStreamDecoder, greeting: QmpGreeting, commandTimeoutMs: number, leftover: QmpMessage[]) {
    this.socketPath = socketPath;
    this.socket = socket;
    this.decoder = decoder;
    this.greeting = greeting;
    this.commandTimeoutMs = commandTimeoutMs;
    socket.on('data', (chunk) => {
      for (const m of this.decoder.feed(chunk)) this.dispatch(m);
    });
    socket.on('error', (err) => this.shutdown(new QmpDisconnectedError(`QMP socket ${socketPath} failed: ${err.message}`, { cause: err })));
    socket.on('close', () => this.shutdown(new QmpDisconnectedError(`QMP socket ${socketPath} closed`)));
    for (const m of leftover) this.dispatch(m);
  }

  /** Connects, reads the greeting and leaves capabilities negotiation mode. */
  static async connect(socketPath: string, options: QmpClientOptions = {}): Promise<QmpClient> {
    const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_QMP_CONNECT_TIMEOUT_MS;
    const decoder = new QmpStreamDecoder();
    const { socket, greeting, leftover } = await new Promise<{ socket: Socket; greeting: QmpGreeting; leftover: QmpMessage[] }>((resolve, reject) => {
      const socket = createConnection(socketPath);
      const timer = setTimeout(() => fail(new QmpTimeoutError('greeting', connectTimeoutMs)), connectTimeoutMs);
      const fail = (err: Error): void => {
        clearTimeout(timer);
        socket.removeAllListeners();
        socket.destroy();
        reject(err);
      };
      socket.on('error', (err) => fail(new QmpDisconnectedError(`cannot connect to QMP socket ${socketPath}: ${err.message}`, { cause: err })));
      socket.on('close', () => fail(new QmpDisconnectedError(`QMP socket ${socketPath} closed before the greeting`)));
      socket.on('data', (chunk) => {
        const msgs = decoder.feed(chunk);
        const idx = msgs.findIndex((m) => m.kind === 'greeting');
        if (idx < 0) return;
        clearTimeout(timer);
        socket.removeAllListeners();
        resolve({ socket, greeting: msgs[idx] as QmpGreeting, leftover: msgs.slice(idx + 1) });
      });
    });
    const client = new QmpClient(socketPath, socket, decoder, greeting, options.commandTimeoutMs ?? DEFAULT_QMP_COMMAND_TIMEOUT_MS, leftover);
    try {
      await client.execute('qmp_capabilities', undefined, { timeoutMs: connectTimeoutMs });
    } catch (err) {
      client.close();
      throw err;
    }
    return client;
  }

  get closed(): boolean {
    return this.closedError !== undefined;
  }

  /** Runs one command; rejects with QmpError, QmpTimeoutError or QmpDisconnectedError. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, options: { timeoutMs?: number } = {}): Promise<T> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = `u${this.nextId++}`;
    const timeoutMs = options.timeoutMs ?? this.commandTimeoutMs;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new QmpTimeoutError(command, timeoutMs));
      }, timeoutMs);
      timer.unref();
      this.pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject, timer });
      if (isTracing('qmp')) log().debug({ id, command, args }, 'qmp send');
      this.socket.write(encodeQmpCommand(command, args, id));
    });
  }

  /** All events from now on, until close(). Each call gets its own independent stream. */
  events(): AsyncIterableIterator<QmpEvent> {
    const listener: EventListener = { queue: [], closed: false };
    this.listeners.add(listener);
    if (this.closedError) listener.closed = true;
    const finish = (): void => {
      listener.closed = true;
      this.listeners.delete(listener);
    };
    const iterator: AsyncIterableIterator<QmpEvent> = {
      [Symbol.asyncIterator]: () => iterator,
      next: async () => {
        for (;;) {
          const ev = listener.queue.shift();
          if (ev) return { value: ev, done: false };
          if (listener.closed) {
            finish();
            return { value: undefined, done: true };
          }
          await new Promise<void>((r) => (listener.wake = r));
          listener.wake = undefined;
        }
      },
      return: async () => {
        finish();
        listener.wake?.();
        return { value: undefined, done: true };
      },
    };
    return iterator;
  }

  /**
   * Resolves with the first event named `name` (and matching `predicate`) after this call. `signal`
   * ends the wait early (QmpWaitCancelledError): a caller that no longer needs the event does not
   * keep its listener until the timeout.
   */
  async waitForEvent(name: QmpEventName, timeoutMs: number, predicate: (ev: QmpEvent) => boolean = () => true, signal?: AbortSignal): Promise<QmpEvent> {
    if (signal?.aborted) throw new QmpWaitCancelledError(name, String(signal.reason));
    const it = this.events();
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const ended = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new QmpTimeoutError(`wait for event ${name}`, timeoutMs)), timeoutMs);
      timer.unref();
      onAbort = () => reject(new QmpWaitCancelledError(name, String(signal!.reason)));
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    const match = (async () => {
      for await (const ev of it) if (ev.event === name && predicate(ev)) return ev;
      throw this.closedError ?? new QmpDisconnectedError(`QMP socket ${this.socketPath} closed while waiting for ${name}`);
    })();
    try {
      return await Promise.race([match, ended]);
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
      await it.return?.();
    }
  }

  stop(): Promise<void> {
    return this.execute<void>('stop').then(() => undefined);
  }

  cont(): Promise<void> {
    return this.execute<void>('cont').then(() => undefined);
  }

  queryStatus(): Promise<QmpStatusInfo> {
    return this.execute<QmpStatusInfo>('query-status');
  }

  queryMigrate(): Promise<QmpMigrationInfo> {
    return this.execute<QmpMigrationInfo>('query-migrate');
  }

  /** e.g. { 'x-ignore-shared': true, events: true } */
  migrateSetCapabilities(capabilities: Record<string, boolean>): Promise<void> {
    const list = Object.entries(capabilities).map(([capability, state]) => ({ capability, state }));
    return this.execute<void>('migrate-set-capabilities', { capabilities: list }).then(() => undefined);
  }

  /** e.g. { 'max-bandwidth': 0, 'downtime-limit': 300 } (QAPI names). */
  migrateSetParameters(parameters: Record<string, unknown>): Promise<void> {
    return this.execute<void>('migrate-set-parameters', parameters).then(() => undefined);
  }

  /** Destination side of `-incoming defer`: start listening on `uri` (unix:PATH, tcp:HOST:PORT). */
  migrateIncoming(uri: string): Promise<void> {
    return this.execute<void>('migrate-incoming', { uri }).then(() => undefined);
  }

  /** Source side: starts the migration; completion is seen through queryMigrate or MIGRATION events. */
  migrate(uri: string): Promise<void> {
    return this.execute<void>('migrate', { uri }).then(() => undefined);
  }

  /** Lets a migration held in `state` (e.g. pre-switchover, with pause-before-switchover) go on. */
  migrateContinue(state: string): Promise<void> {
    return this.execute<void>('migrate-continue', { state }).then(() => undefined);
  }

  migrateCancel(): Promise<void> {
    return this.execute<void>('migrate_cancel').then(() => undefined);
  }

  queryMemdev(): Promise<QmpMemdevInfo[]> {
    return this.execute<QmpMemdevInfo[]>('query-memdev');
  }

  /** Asks QEMU to exit; the socket closing is the expected answer, so that is not an error. */
  async quit(timeoutMs = 3000): Promise<void> {
    try {
      await this.execute('quit', undefined, { timeoutMs });
    } catch (err) {
      if (!(err instanceof QmpDisconnectedError)) throw err;
    }
  }

  close(): void {
    this.shutdown(new QmpDisconnectedError(`QMP client for ${this.socketPath} closed`));
  }

  private dispatch(m: QmpMessage): void {
    if (m.kind === 'event') {
      if (isTracing('qmp')) log().debug({ event: m.event, data: m.data }, 'qmp event');
      for (const l of this.listeners) {
        if (l.queue.length >= EVENT_QUEUE_LIMIT) {
          l.queue.shift();
          this.droppedEvents++;
        }
        l.queue.push(m);
        l.wake?.();
      }
      return;
    }
    if (m.kind === 'greeting') return;
    const p = m.id !== undefined ? this.pending.get(m.id) : undefined;
    if (!p) return; // an answer to a command that already timed out
    this.pending.delete(m.id!);
    clearTimeout(p.timer);
    if (m.kind === 'return') p.resolve(m.value);
    else p.reject(new QmpError(p.command, m.errorClass, m.desc));
  }

  private shutdown(err: QmpDisconnectedError): void {
    if (this.closedError) return;
    this.closedError = err;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
    for (const l of this.listeners) {
      l.closed = true;
      l.wake?.();
    }
    this.socket.destroy();
  }
}

// QMP wire format, no I/O: splits the byte stream into JSON lines, classifies each message
// (greeting, command return, command error, asynchronous event) and encodes commands.
// Malformed lines are counted and dropped, never thrown, so a confused peer cannot crash us.

/** Longest line accepted; QEMU's biggest answers (query-qmp-schema) stay well below. */
export const QMP_MAX_LINE_BYTES = 16 * 1024 * 1024;

export interface QmpGreeting {
  kind: 'greeting';
  version?: { qemu?: { major: number; minor: number; micro: number }; package?: string };
  capabilities: string[];
}

export interface QmpReturn {
  kind: 'return';
  id?: string;
  value: unknown;
}

export interface QmpErrorReply {
  kind: 'error';
  id?: string;
  errorClass: string;
  desc: string;
}

export interface QmpEvent {
  kind: 'event';
  event: string;
  data: Record<string, unknown>;
  /** Wall-clock time of the event in ms since the epoch, from QEMU's timestamp. */
  timestampMs?: number;
}

export type QmpMessage = QmpGreeting | QmpReturn | QmpErrorReply | QmpEvent;

export function encodeQmpCommand(execute: string, args: Record<string, unknown> | undefined, id: string): string {
  const msg: Record<string, unknown> = { execute, id };
  if (args && Object.keys(args).length > 0) msg.arguments = args;
  return JSON.stringify(msg) + '\r\n';
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Classifies one parsed JSON value; undefined when it is not a QMP message. */
export function classifyQmpMessage(v: unknown): QmpMessage | undefined {
  if (!isObject(v)) return undefined;
  const id = typeof v.id === 'string' ? v.id : typeof v.id === 'number' ? String(v.id) : undefined;
  if (isObject(v.QMP)) {
    const q = v.QMP;
    const caps = Array.isArray(q.capabilities) ? q.capabilities.filter((c): c is string => typeof c === 'string') : [];
    return { kind: 'greeting', version: isObject(q.version) ? (q.version as QmpGreeting['version']) : undefined, capabilities: caps };
  }
  if ('return' in v) return { kind: 'return', id, value: v.return };
  if (isObject(v.error)) {
    const e = v.error;
    return { kind: 'error', id, errorClass: typeof e.class === 'string' ? e.class : 'Unknown', desc: typeof e.desc === 'string' ? e.desc : '' };
  }
  if (typeof v.event === 'string') {
    const ts = v.timestamp;
    let timestampMs: number | undefined;
    if (isObject(ts) && typeof ts.seconds === 'number' && typeof ts.microseconds === 'number') {
      timestampMs = ts.seconds * 1000 + Math.floor(ts.microseconds / 1000);
    }
    return { kind: 'event', event: v.event, data: isObject(v.data) ? v.data : {}, timestampMs };
  }
  return undefined;
}

/** Incremental decoder: feed() raw chunks, get whole messages back in order. */
export class QmpStreamDecoder {
  private buffered = '';
  /** Lines that were not JSON, not a QMP message, or too long. */
  malformedCount = 0;

  feed(chunk: Buffer | string): QmpMessage[] {
    this.buffered += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    const out: QmpMessage[] = [];
    let nl: number;
    while ((nl = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, nl).trim();
      this.buffered = this.buffered.slice(nl + 1);
      if (line.length === 0) continue;
      const msg = this.parseLine(line);
      if (msg) out.push(msg);
    }
    if (this.buffered.length > QMP_MAX_LINE_BYTES) {
      this.buffered = '';
      this.malformedCount++;
    }
    return out;
  }

  private parseLine(line: string): QmpMessage | undefined {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      this.malformedCount++;
      return undefined;
    }
    const msg = classifyQmpMessage(parsed);
    if (!msg) this.malformedCount++;
    return msg;
  }
}

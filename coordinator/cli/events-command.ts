// `umbractl events`: the coordinator's audit log, optionally followed live.
import type * as grpc from '@grpc/grpc-js';
import { callUnary, type GenericClient } from '../../shared/grpc-client';
import { fromServiceError } from '../../shared/grpc-status';
import type { UmbraEvent } from '../../shared/host-types';
import { eventFromWire, type eventToWire } from '../api/host-messages';

function line(e: UmbraEvent): string {
  return `${String(e.sequence).padStart(6)}  ${new Date(e.timestamp_unix_ms).toISOString()}  ${e.kind.replace('EVENT_KIND_', '').toLowerCase().padEnd(20)}  ${e.message}`;
}

export async function runEventsCommand(client: GenericClient, opts: { json: boolean; follow: boolean; after: number; limit: number }): Promise<number> {
  const res = await callUnary<{ events: Array<ReturnType<typeof eventToWire>> }>(client, 'ListEvents', { after_sequence: String(opts.after), limit: opts.limit });
  const events = res.events.map(eventFromWire);
  const print = (e: UmbraEvent) => process.stdout.write(opts.json ? JSON.stringify(e) + '\n' : line(e) + '\n');
  if (opts.json && !opts.follow) process.stdout.write(JSON.stringify(events, null, 2) + '\n');
  else events.forEach(print);
  if (!opts.follow) return 0;
  const last = events.length ? events[events.length - 1].sequence : opts.after;
  const stream = (client.WatchEvents as (req: unknown) => grpc.ClientReadableStream<{ event: ReturnType<typeof eventToWire> }>).call(client, {
    after_sequence: String(last),
    from_start: last === 0,
  });
  return new Promise((resolve, reject) => {
    stream.on('data', (m) => print(eventFromWire(m.event)));
    stream.on('error', (err) => reject(fromServiceError(err)));
    stream.on('end', () => resolve(0));
    process.once('SIGINT', () => {
      stream.cancel();
      resolve(0);
    });
  });
}

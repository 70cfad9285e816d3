// ListHosts load for coordinator-load: `rate` calls per second for `seconds`, spread over a few
// operator channels, open loop (a slow answer does not delay the next call). Prints JSON latencies.
// Like an HTTP load tool that does not parse bodies, it checks each answer by counting its hosts in
// the raw bytes rather than decoding every host: on a 2-core machine shared with the server, full
// decoding of 1,000 answers a second by the load generators alone took most of a core.
import * as grpc from '@grpc/grpc-js';
import { callUnary, deadline, dial } from '../../shared/grpc-client';
import { channelOptions } from '../../shared/grpc-server';
import { channelCredentials, loadTlsMaterial } from '../../shared/tls';
import { countHosts } from './count-hosts';

const LIST_HOSTS_PATH = '/umbra.coordinator.v1.CoordinatorService/ListHosts';
/** ListHostsRequest { view: HOST_VIEW_BASIC } (field 2, varint 1): what umbractl hosts asks for. */
const BASIC_VIEW_REQUEST = Buffer.from([0x10, 0x01]);

function listHosts(client: grpc.Client, deadlineMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(LIST_HOSTS_PATH, (b: Buffer) => b, countHosts, BASIC_VIEW_REQUEST, { deadline: deadline(deadlineMs) }, (err, count) =>
      err ? reject(err) : resolve(count as number),
    );
  });
}

const [endpoint, ca, cert, key, rateArg, secondsArg, expectedHostsArg] = process.argv.slice(2);
const rate = Number(rateArg);
const seconds = Number(secondsArg);
const expectedHosts = Number(expectedHostsArg);
const CHANNELS = 4;
const WARMUP_CALLS = 200;

async function main(): Promise<void> {
  const creds = channelCredentials(loadTlsMaterial({ ca, cert, key }), { role: 'coordinator' });
  const clients = Array.from({ length: CHANNELS }, () => new grpc.Client(endpoint, creds, channelOptions()));
  // One fully decoded answer first: the raw count must agree with what umbractl would see.
  const decoder = dial('umbra.coordinator.v1.CoordinatorService', endpoint, creds);
  const decoded = await callUnary<{ hosts: unknown[] }>(decoder, 'ListHosts', { view: 'HOST_VIEW_BASIC' });
  decoder.close();
  if (decoded.hosts.length !== expectedHosts) throw new Error(`decoded answer has ${decoded.hosts.length} hosts, expected ${expectedHosts}`);
  for (let i = 0; i < WARMUP_CALLS; i++) await listHosts(clients[i % CHANNELS], 5000);
  const latencies: number[] = [];
  let errors = 0;
  let wrongCount = 0;
  let inflight = 0;
  const total = rate * seconds;
  const start = performance.now();
  await new Promise<void>((resolve) => {
    let sent = 0;
    const tick = () => {
      // Catch up on every call due by now: the schedule, not the answers, sets the pace.
      const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate));
      while (sent < due) {
        const t0 = performance.now();
        inflight++;
        listHosts(clients[sent % CHANNELS], 10_000).then(
          (count) => {
            latencies.push(performance.now() - t0);
            if (count !== expectedHosts) wrongCount++;
          },
          (err) => {
            if (errors++ === 0) console.error(`first error: ${(err as Error).message}`);
          },
        ).finally(() => {
          inflight--;
          if (sent >= total && inflight === 0) resolve();
        });
        sent++;
      }
      if (sent < total) setTimeout(tick, 1);
    };
    tick();
  });
  const elapsedS = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
  void q;
  console.log(JSON.stringify({ calls: latencies.length, errors, wrongCount, achievedRate: latencies.length / elapsedS, latenciesMs: latencies.map((l) => Math.round(l * 1000) / 1000) }));
  for (const c of clients) c.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

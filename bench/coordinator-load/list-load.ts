// ListHosts load for coordinator-load: `rate` calls per second for `seconds`, spread over a few
// operator channels, open loop (a slow answer does not delay the next call). Prints JSON latencies.
import { callUnary, dial } from '../../shared/grpc-client';
import { channelCredentials, loadTlsMaterial } from '../../shared/tls';

const [endpoint, ca, cert, key, rateArg, secondsArg, expectedHostsArg] = process.argv.slice(2);
const rate = Number(rateArg);
const seconds = Number(secondsArg);
const expectedHosts = Number(expectedHostsArg);
const CHANNELS = 4;
const WARMUP_CALLS = 200;

async function main(): Promise<void> {
  const creds = channelCredentials(loadTlsMaterial({ ca, cert, key }), { role: 'coordinator' });
  const clients = Array.from({ length: CHANNELS }, () => dial('umbra.coordinator.v1.CoordinatorService', endpoint, creds));
  for (let i = 0; i < WARMUP_CALLS; i++) await callUnary(clients[i % CHANNELS], 'ListHosts', {});
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
        callUnary<{ hosts: unknown[] }>(clients[sent % CHANNELS], 'ListHosts', {}, 10_000).then(
          (res) => {
            latencies.push(performance.now() - t0);
            if (res.hosts.length !== expectedHosts) wrongCount++;
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

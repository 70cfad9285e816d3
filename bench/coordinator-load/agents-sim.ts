// Simulated agents for coordinator-load: N identities register and heartbeat every second over
// their own mTLS channels. Prints "ready" once all are registered; runs until killed.
import { readFileSync } from 'node:fs';
import type * as grpc from '@grpc/grpc-js';
import { dial, callUnary } from '../../shared/grpc-client';
import { channelCredentials, loadTlsMaterial } from '../../shared/tls';
import { factsToWire } from '../../coordinator/api/host-messages';
import type { HostFacts } from '../../shared/host-types';

const [endpoint, pkiListFile, factsFile, intervalMsArg] = process.argv.slice(2);
const intervalMs = Number(intervalMsArg ?? 1000);
const agents = JSON.parse(readFileSync(pkiListFile, 'utf8')) as Array<{ id: string; ca: string; cert: string; key: string }>;
const template = JSON.parse(readFileSync(factsFile, 'utf8')) as HostFacts;

async function main(): Promise<void> {
  await Promise.all(
    agents.map(async (a, i) => {
      const client = dial('umbra.coordinator.v1.CoordinatorService', endpoint, channelCredentials(loadTlsMaterial(a), { role: 'coordinator' }));
      // Distinct loopback addresses on the closed discard port: the coordinator's calls to simulated
      // agents are refused at once and never leave the machine.
      const facts: HostFacts = { ...template, host_id: a.id, agent_endpoint: `127.0.${Math.floor(i / 250) + 1}.${(i % 250) + 1}:9` };
      await callUnary(client, 'RegisterHost', { facts: factsToWire(facts) }, 30_000);
      const stream = (client.ReportHeartbeats as (cb: (e: unknown) => void) => grpc.ClientWritableStream<unknown>).call(client, (err: unknown) => {
        if (err) console.error(`${a.id}: heartbeat stream ended: ${(err as Error).message}`);
      });
      let seq = 0;
      // Spread agents over the interval, as a real fleet's timers are.
      setTimeout(() => {
        setInterval(() => {
          stream.write({ host_id: a.id, sequence: String(++seq), sent_at_unix_ms: String(Date.now()), usage: { cpu_load_ratio: Math.random(), memory_used_bytes: '1000000', memory_available_bytes: '2000000' } });
        }, intervalMs);
      }, (i * intervalMs) / agents.length);
    }),
  );
  console.log('ready');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

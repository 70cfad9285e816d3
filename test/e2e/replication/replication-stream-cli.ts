// Opens one StreamMemoryDeltas stream with a given identity, sends `open`, and prints how the
// shadow agent answered ({code, details, first}) as JSON; run inside a test namespace.
// Usage: node replication-stream-cli.js ENDPOINT CA CERT KEY EXPECTED_ROLE VM_ID
import type * as grpc from '@grpc/grpc-js';
import { dial } from '../../../shared/grpc-client';
import { channelCredentials, loadTlsMaterial } from '../../../shared/tls';
import type { PeerRole } from '../../../shared/peer-identity';

const [endpoint, ca, cert, key, role, vmId] = process.argv.slice(2);
const client = dial('umbra.agent.v1.ReplicationService', endpoint, channelCredentials(loadTlsMaterial({ ca, cert, key }), { role: role as PeerRole }));
const call = (client.StreamMemoryDeltas as () => grpc.ClientDuplexStream<unknown, unknown>).call(client);
let first: unknown;
const done = (code: number, details: string) => {
  process.stdout.write(JSON.stringify({ code, details, first: first ?? null }) + '\n');
  client.close();
  process.exit(0);
};
call.on('data', (m) => {
  first ??= m;
  call.end();
});
call.on('error', (err: grpc.ServiceError) => done(err.code, err.details));
call.on('end', () => done(0, ''));
call.write({ open: { vm_id: vmId, generation: 'g-test', image_size_bytes: String(1 << 20), page_size_bytes: 4096, source_host_id: 'probe' } });
setTimeout(() => done(-1, 'no answer within 5 s'), 5000).unref();

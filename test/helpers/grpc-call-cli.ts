// Makes one unary gRPC call with a given identity and prints {code, details, response} as JSON;
// run inside a test namespace where the test process itself cannot reach.
// Usage: node grpc-call-cli.js SERVICE METHOD ENDPOINT CA CERT KEY EXPECTED_ROLE REQUEST_JSON
import { dial } from '../../shared/grpc-client';
import { channelCredentials, loadTlsMaterial } from '../../shared/tls';
import type { PeerRole } from '../../shared/peer-identity';

const [service, method, endpoint, ca, cert, key, role, request] = process.argv.slice(2);
const client = dial(service, endpoint, channelCredentials(loadTlsMaterial({ ca, cert, key }), { role: role as PeerRole }));
(client[method] as (r: unknown, o: unknown, cb: (e: { code: number; details: string } | null, r: unknown) => void) => void).call(
  client,
  JSON.parse(request),
  { deadline: new Date(Date.now() + 5000) },
  (err, res) => {
    process.stdout.write(JSON.stringify(err ? { code: err.code, details: err.details } : { code: 0, details: '', response: res }) + '\n');
    client.close();
  },
);

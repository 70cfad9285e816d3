// ListHosts load for coordinator-load: `rate` calls per second for `seconds`, spread over a few
// mTLS connections, open loop (a slow answer does not delay the next call). Prints JSON latencies.
//
// Like ghz or h2load, it speaks gRPC over HTTP/2 itself (node:http2: the same TLS identities,
// HTTP/2 settings and request bytes as umbractl's channel) instead of going through the grpc-js
// client, and it checks each answer by counting its hosts in the raw bytes rather than decoding
// every host. Measured with --cpu-prof: the grpc-js client path (interceptors, resolving call,
// per-call stack capture, deadline timers) plus full decoding took most of a core per 500 calls/s,
// on a 2-core machine the server under test shares; the generator's own lag then counted as
// server latency.
//
// Latency is measured from each call's scheduled send time, so a generator that falls behind
// shows up in the figures (and its send lag is reported separately) instead of being hidden.
import http2 from 'node:http2';
import { callUnary, dial } from '../../shared/grpc-client';
import { FLOW_CONTROL_WINDOW_BYTES } from '../../shared/grpc-server';
import { identityFromSubjectAltName } from '../../shared/peer-identity';
import { channelCredentials, loadTlsMaterial } from '../../shared/tls';
import { countHosts } from './count-hosts';

const LIST_HOSTS_PATH = '/umbra.coordinator.v1.CoordinatorService/ListHosts';
/** ListHostsRequest { view: HOST_VIEW_BASIC } (field 2, varint 1): what umbractl hosts asks for. */
const BASIC_VIEW_REQUEST = Buffer.from([0x10, 0x01]);
/** gRPC length-prefixed message: not compressed, 4-byte big-endian length, message. */
const FRAMED_REQUEST = Buffer.concat([Buffer.from([0, 0, 0, 0, BASIC_VIEW_REQUEST.length]), BASIC_VIEW_REQUEST]);
const DEADLINE_MS = 10_000;
const CONNECTIONS = 4;
const WARMUP_CALLS = 200;

const [endpoint, ca, cert, key, rateArg, secondsArg, expectedHostsArg] = process.argv.slice(2);
const rate = Number(rateArg);
const seconds = Number(secondsArg);
const expectedHosts = Number(expectedHostsArg);

function connect(tls: ReturnType<typeof loadTlsMaterial>): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://${endpoint}`, {
      ca: tls.ca,
      cert: tls.cert,
      key: tls.key,
      servername: 'umbra', // as channelOptions' grpc.ssl_target_name_override
      checkServerIdentity: (_host, peerCert) =>
        identityFromSubjectAltName(peerCert.subjectaltname)?.role === 'coordinator' ? undefined : new Error('server is not a coordinator identity'),
      settings: { initialWindowSize: FLOW_CONTROL_WINDOW_BYTES },
      maxSessionMemory: 1024, // MiB; as grpc-js, which disables this limit
    });
    session.once('error', reject);
    session.once('connect', () => {
      session.setLocalWindowSize(FLOW_CONTROL_WINDOW_BYTES);
      session.removeListener('error', reject);
      session.on('error', (err) => console.error(`connection error: ${err.message}`));
      resolve(session);
    });
  });
}

interface Outcome {
  /** gRPC status code, or -1 for a transport failure. */
  code: number;
  detail: string;
  count: number;
}

/** One ListHosts call; `done` runs once, with the status and the host count of the answer. */
function listHosts(session: http2.ClientHttp2Session, done: (o: Outcome) => void): http2.ClientHttp2Stream {
  const req = session.request({
    ':method': 'POST',
    ':path': LIST_HOSTS_PATH,
    'content-type': 'application/grpc',
    te: 'trailers',
    'grpc-timeout': `${DEADLINE_MS}m`,
  });
  const chunks: Buffer[] = [];
  let status: string | undefined;
  let message = '';
  let finished = false;
  const finish = (o: Outcome) => {
    if (finished) return;
    finished = true;
    done(o);
  };
  req.on('response', (h) => {
    // A trailers-only answer (an error) carries its status in the headers.
    if (h['grpc-status'] !== undefined) {
      status = String(h['grpc-status']);
      message = String(h['grpc-message'] ?? '');
    }
  });
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('trailers', (t) => {
    status = String(t['grpc-status']);
    message = String(t['grpc-message'] ?? '');
  });
  req.on('error', (err) => finish({ code: -1, detail: err.message, count: 0 }));
  req.on('close', () => {
    if (status === undefined) return finish({ code: -1, detail: `stream closed without a status (HTTP/2 code ${req.rstCode})`, count: 0 });
    if (status !== '0') return finish({ code: Number(status), detail: decodeURIComponent(message), count: 0 });
    try {
      const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      if (body.length < 5 || body[0] !== 0) throw new Error('answer is not one uncompressed gRPC message');
      const length = body.readUInt32BE(1);
      if (body.length !== 5 + length) throw new Error(`answer has ${body.length - 5} bytes, its frame says ${length}`);
      finish({ code: 0, detail: '', count: countHosts(body.subarray(5)) });
    } catch (err) {
      finish({ code: -1, detail: (err as Error).message, count: 0 });
    }
  });
  req.end(FRAMED_REQUEST);
  return req;
}

const call = (session: http2.ClientHttp2Session) => new Promise<Outcome>((resolve) => listHosts(session, resolve));

async function main(): Promise<void> {
  const tls = loadTlsMaterial({ ca, cert, key });
  // One answer decoded in full by the grpc-js client first: the raw count must agree with what
  // umbractl would see.
  const decoder = dial('umbra.coordinator.v1.CoordinatorService', endpoint, channelCredentials(tls, { role: 'coordinator' }));
  const decoded = await callUnary<{ hosts: unknown[] }>(decoder, 'ListHosts', { view: 'HOST_VIEW_BASIC' });
  decoder.close();
  if (decoded.hosts.length !== expectedHosts) throw new Error(`decoded answer has ${decoded.hosts.length} hosts, expected ${expectedHosts}`);

  const sessions = await Promise.all(Array.from({ length: CONNECTIONS }, () => connect(tls)));
  for (let i = 0; i < WARMUP_CALLS; i++) {
    const o = await call(sessions[i % CONNECTIONS]);
    if (o.code !== 0) throw new Error(`warm-up call failed: ${o.code} ${o.detail}`);
    if (o.count !== expectedHosts) throw new Error(`raw count ${o.count} disagrees with the decoded answer (${expectedHosts} hosts)`);
  }

  const latencies: number[] = [];
  /** Latencies by the second of their scheduled send, to tell a start-up transient from a steady state. */
  const bySecond: number[][] = Array.from({ length: seconds }, () => []);
  const sendLags: number[] = [];
  /** From the actual send instead (diagnostic only: it leaves out the generator's own lag). */
  const fromSend: number[] = [];
  let errors = 0;
  let wrongCount = 0;
  const total = rate * seconds;
  const inflight = new Map<http2.ClientHttp2Stream, number>();
  const expired = new WeakSet<http2.ClientHttp2Stream>();
  const start = performance.now();
  await new Promise<void>((resolve) => {
    let sent = 0;
    let completed = 0;
    // The deadline is enforced here too (as a client library would), not only by the server.
    const sweep = setInterval(() => {
      const now = performance.now();
      for (const [req, sentAt] of inflight) {
        if (now - sentAt > DEADLINE_MS) {
          inflight.delete(req);
          expired.add(req);
          req.close(http2.constants.NGHTTP2_CANCEL);
        }
      }
    }, 100);
    const tick = () => {
      // Every call due by now goes out: the schedule, not the answers, sets the pace.
      const now = performance.now();
      const due = Math.min(total, Math.floor(((now - start) / 1000) * rate) + 1);
      while (sent < due) {
        const scheduledAt = start + (sent * 1000) / rate;
        const sentAt = performance.now();
        sendLags.push(sentAt - scheduledAt);
        const req = listHosts(sessions[sent % CONNECTIONS], (o) => {
          inflight.delete(req);
          if (o.code === 0) {
            const latency = performance.now() - scheduledAt;
            latencies.push(latency);
            fromSend.push(performance.now() - sentAt);
            bySecond[Math.min(seconds - 1, Math.floor((scheduledAt - start) / 1000))].push(latency);
            if (o.count !== expectedHosts) wrongCount++;
          } else if (errors++ === 0) {
            const what = expired.has(req) ? `no answer within the ${DEADLINE_MS} ms deadline` : `${o.code === -1 ? 'transport' : `status ${o.code}`}: ${o.detail}`;
            console.error(`first error: ${what}`);
          }
          if (++completed === total) {
            clearInterval(sweep);
            resolve();
          }
        });
        inflight.set(req, sentAt);
        sent++;
      }
      if (sent < total) setTimeout(tick, Math.max(0, start + (sent * 1000) / rate - performance.now()));
    };
    tick();
  });
  const elapsedS = (performance.now() - start) / 1000;
  for (const s of sessions) s.close();
  sendLags.sort((a, b) => a - b);
  fromSend.sort((a, b) => a - b);
  const q = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))] ?? NaN;
  const round = (x: number) => Math.round(x * 1000) / 1000;
  console.log(
    JSON.stringify({
      calls: latencies.length,
      errors,
      wrongCount,
      achievedRate: latencies.length / elapsedS,
      sendLagP50Ms: round(q(sendLags, 0.5)),
      sendLagP99Ms: round(q(sendLags, 0.99)),
      fromSendP50Ms: round(q(fromSend, 0.5)),
      fromSendP99Ms: round(q(fromSend, 0.99)),
      sendLagMaxMs: round(sendLags[sendLags.length - 1] ?? NaN),
      p99BySecondMs: bySecond.map((xs) => round(q(xs.sort((a, b) => a - b), 0.99))),
      latenciesMs: latencies.map(round),
    }),
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

// Benchmark: one million random and mutated frames and messages through the DHCP decoders;
// counts exceptions other than DhcpDecodeError escaping (target 0) and the rate. Peer: the npm
// `dhcp` package's parser on the same inputs (any exception it throws counts, none are typed).
import { DhcpDecodeError } from '../../agent/dhcp/dhcp-decode-error';
import { DhcpFrameView } from '../../agent/dhcp/dhcp-frame-codec';
import { DhcpPacketView } from '../../agent/dhcp/dhcp-packet-codec';
import { createRng, mutate, seedFrames, seedMessages } from '../../test/unit/dhcp/packet-mutator';
import { printFigures, printTable } from '../lib/report';

const TOTAL = 1_000_000;
const PEER_SAMPLE = 100_000;
const SEED = Number(process.env.UMBRA_FUZZ_SEED ?? 1);

function main(): void {
  const rng = createRng(SEED);
  const messages = seedMessages();
  const frames = seedFrames();
  const inputs: Buffer[] = [];
  // Inputs are made first so the timing covers decoding only.
  for (let i = 0; i < TOTAL; i++) {
    if (i & 1) inputs.push(mutate(rng, frames[i % frames.length], frames[i % frames.length][12] === 0x81 ? 46 : 42));
    else inputs.push(mutate(rng, messages[i % messages.length], 0));
  }
  const view = new DhcpPacketView();
  const fview = new DhcpFrameView();
  let escaped = 0;
  let typedThrown = 0;
  let accepted = 0;
  let firstEscape = '';
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < TOTAL; i++) {
    const input = inputs[i];
    try {
      if (i & 1) {
        fview.decode(input);
        fview.packet.toMessage();
      } else {
        view.decode(input);
        view.toMessage();
      }
      accepted++;
    } catch (err) {
      if (err instanceof DhcpDecodeError) typedThrown++;
      else {
        escaped++;
        if (!firstEscape) firstEscape = `${String(err)} on ${input.toString('hex')}`;
      }
    }
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  // The capture path: tryDecode returns the reason instead of throwing, and nothing is materialized.
  let tryEscaped = 0;
  const q0 = process.hrtime.bigint();
  for (let i = 0; i < TOTAL; i++) {
    try {
      if (i & 1) fview.tryDecode(inputs[i]);
      else view.tryDecode(inputs[i]);
    } catch {
      tryEscaped++;
    }
  }
  const trySeconds = Number(process.hrtime.bigint() - q0) / 1e9;

  let peerThrew = 0;
  let peerRate: number | undefined;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const protocol = require('dhcp/lib/protocol.js') as { parse(b: Buffer): unknown };
    const log = console.log;
    console.log = () => undefined;
    const p0 = process.hrtime.bigint();
    for (let i = 0; i < PEER_SAMPLE; i++) {
      const input = inputs[i * 2]; // bare messages: what the peer parses
      try {
        protocol.parse(input);
      } catch {
        peerThrew++;
      }
    }
    peerRate = PEER_SAMPLE / (Number(process.hrtime.bigint() - p0) / 1e9);
    console.log = log;
  } catch (err) {
    console.error(`peer npm dhcp@0.2.20 unavailable: ${(err as Error).message}`);
  }

  if (firstEscape) console.error(`first escaping exception: ${firstEscape}`);
  printTable(`DHCP decoder fuzz: ${TOTAL} random/mutated inputs (seed ${SEED})`, `npm dhcp 0.2.20 (${PEER_SAMPLE} messages)`, [
    { metric: 'non-DhcpDecodeError exceptions escaping', ours: escaped, unit: 'count', target: '0' },
    { metric: 'exceptions from tryDecode (capture path)', ours: tryEscaped, unit: 'count', target: '0' },
    { metric: 'rejected with DhcpDecodeError', ours: typedThrown, unit: 'count' },
    { metric: 'accepted (still well-formed)', ours: accepted, unit: 'count' },
    { metric: 'untyped exceptions thrown (peer: every rejection)', ours: escaped, peer: peerThrew, unit: 'count' },
    { metric: 'rate, tryDecode (capture path)', ours: TOTAL / trySeconds / 1e6, unit: 'M inputs/s', target: '>= 1' },
    { metric: 'rate, decode+toMessage (throws on reject)', ours: TOTAL / seconds / 1e6, peer: peerRate !== undefined ? peerRate / 1e6 : undefined, unit: 'M inputs/s' },
  ]);
  printFigures({
    fuzz_inputs_count: TOTAL,
    fuzz_escaped_exceptions_count: escaped,
    fuzz_rejected_count: typedThrown,
    fuzz_accepted_count: accepted,
    fuzz_inputs_per_s: Math.round(TOTAL / seconds),
    fuzz_try_decode_escaped_count: tryEscaped,
    fuzz_try_decode_inputs_per_s: Math.round(TOTAL / trySeconds),
    peer_untyped_exceptions_count: peerThrew,
    peer_inputs_per_s: peerRate !== undefined ? Math.round(peerRate) : 'unavailable',
  });
}

main();

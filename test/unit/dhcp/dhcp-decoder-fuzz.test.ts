// Property test: random and mutated frames and messages never make the decoders throw anything
// but DhcpDecodeError, and whatever they accept can be read back in full.
import test from 'ava';
import { DhcpDecodeError } from '../../../agent/dhcp/dhcp-decode-error';
import { DhcpFrameView } from '../../../agent/dhcp/dhcp-frame-codec';
import { decodeDhcpPacket, DhcpPacketView } from '../../../agent/dhcp/dhcp-packet-codec';
import { createRng, mutate, seedFrames, seedMessages } from './packet-mutator';

const SEED = Number(process.env.UMBRA_FUZZ_SEED ?? 0x5eed);
const ITERATIONS = 20000;

test(`mutated messages: only DhcpDecodeError escapes (seed ${SEED})`, (t) => {
  const rng = createRng(SEED);
  const seeds = seedMessages();
  const view = new DhcpPacketView();
  let accepted = 0;
  for (let i = 0; i < ITERATIONS; i++) {
    const input = mutate(rng, seeds[i % seeds.length], 0);
    try {
      const viaView = view.tryDecode(input);
      const msg = decodeDhcpPacket(input);
      t.is(viaView, null, `iteration ${i}: tryDecode and decode disagree`);
      // Accessors must cope with whatever passed validation.
      JSON.stringify(msg);
      accepted++;
    } catch (err) {
      if (!(err instanceof DhcpDecodeError)) t.fail(`iteration ${i}: ${String(err)} for ${input.toString('hex')}`);
    }
  }
  t.log(`${accepted} of ${ITERATIONS} mutants were still well-formed`);
  t.true(accepted > 0 && accepted < ITERATIONS);
});

test(`mutated frames: tryDecode returns a code, never throws (seed ${SEED})`, (t) => {
  const rng = createRng(SEED + 1);
  const seeds = seedFrames();
  const view = new DhcpFrameView();
  const codes = new Map<string, number>();
  for (let i = 0; i < ITERATIONS; i++) {
    const seed = seeds[i % seeds.length];
    const bootpAt = seed.length > 0 && seed[12] === 0x81 ? 46 : 42;
    const input = mutate(rng, seed, bootpAt);
    let code: string | null;
    try {
      code = view.tryDecode(input);
      if (code === null) JSON.stringify(view.packet.toMessage());
    } catch (err) {
      t.fail(`iteration ${i}: ${String(err)} for ${input.toString('hex')}`);
      return;
    }
    codes.set(code ?? 'OK', (codes.get(code ?? 'OK') ?? 0) + 1);
  }
  t.log(Object.fromEntries(codes));
  // The mutator must reach deep enough to trigger many distinct rejections.
  t.true(codes.size >= 8, `only ${[...codes.keys()].join(', ')}`);
});

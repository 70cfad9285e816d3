// Seeded generator of random and mutated DHCP frames/messages for the fuzz test and bench/dhcp-fuzz.
import { encodeDhcpFrame } from '../../../agent/dhcp/dhcp-frame-codec';
import { encodeDhcpPacket } from '../../../agent/dhcp/dhcp-packet-codec';
import { BootpOffset } from '../../../agent/dhcp/dhcp-option-codes';

/** mulberry32: tiny, fast, good enough to explore inputs, and reproducible from a seed. */
export function createRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Well-formed seeds covering every option kind the decoder interprets. */
export function seedMessages(): Buffer[] {
  return [
    encodeDhcpPacket({ xid: 1, chaddr: '52:54:00:00:00:01', messageType: 1, hostname: 'a', clientId: '01525400000001', extraOptions: [{ code: 55, data: Buffer.from([1, 3, 6, 12, 15]) }] }),
    encodeDhcpPacket({
      xid: 2, chaddr: '52:54:00:00:00:02', messageType: 5, yiaddr: '10.0.0.2', subnetMask: '255.255.255.0', routers: ['10.0.0.1'],
      dnsServers: ['10.0.0.53', '10.0.0.54'], domainName: 'lab', hostname: 'b', leaseTimeSec: 600, renewalTimeSec: 300,
      rebindingTimeSec: 525, serverId: '10.0.0.1', relayAgentInfo: { circuitId: Buffer.from('c1'), remoteId: Buffer.from('r1') },
    }),
    encodeDhcpPacket({ xid: 3, chaddr: '52:54:00:00:00:03', messageType: 5, overloadFile: [{ code: 15, data: Buffer.from('ovl') }], overloadSname: [{ code: 6, data: Buffer.from([1, 1, 1, 1]) }] }),
    encodeDhcpPacket({ xid: 4, chaddr: '52:54:00:00:00:04', messageType: 7, ciaddr: '10.0.0.4', serverId: '10.0.0.1', extraOptions: [{ code: 250, data: Buffer.alloc(400, 1) }] }),
  ];
}

export function seedFrames(): Buffer[] {
  return seedMessages().flatMap((payload, i) => [
    encodeDhcpFrame({ srcMac: '52:54:00:00:00:0' + i, payload }),
    encodeDhcpFrame({ srcMac: '52:54:00:00:00:0' + i, payload, vlanId: 10 + i, srcPort: 67, dstPort: 68 }),
  ]);
}

/** One mutant of `input`; `bootpAt` is where the BOOTP message starts (0 for bare messages). */
export function mutate(rng: () => number, input: Buffer, bootpAt: number): Buffer {
  const pick = (n: number) => Math.floor(rng() * n);
  const kind = pick(7);
  if (kind === 0) {
    // Random bytes, sometimes behind a valid header so the option scanner gets exercised.
    const out = Buffer.alloc(pick(700));
    for (let i = 0; i < out.length; i++) out[i] = pick(256);
    if (rng() < 0.5) input.copy(out, 0, 0, Math.min(out.length, bootpAt + BootpOffset.OPTIONS));
    return out;
  }
  if (kind === 1) return Buffer.from(input.subarray(0, pick(input.length + 1)));
  const out = Buffer.from(input);
  const flips = 1 + pick(8);
  for (let f = 0; f < flips; f++) {
    if (out.length === 0) break;
    switch (kind) {
      case 2: out[pick(out.length)] ^= 1 << pick(8); break;
      case 3: out[pick(out.length)] = pick(256); break;
      case 4: {
        // Length-field lies: the byte after an option code, inside the options area.
        const from = bootpAt + BootpOffset.OPTIONS;
        if (out.length > from + 1) out[from + 1 + pick(out.length - from - 1)] = [0, 1, 2, 3, 4, 5, 255, pick(256)][pick(8)];
        break;
      }
      case 5: {
        // Header length fields: IP total/IHL, UDP length, hlen, overload value.
        const spots = [bootpAt - 8 + 4, bootpAt - 28 + 2, bootpAt - 28, bootpAt + BootpOffset.HLEN, bootpAt + BootpOffset.OPTIONS + 2];
        const at = spots[pick(spots.length)];
        if (at >= 0 && at < out.length) out[at] = pick(256);
        break;
      }
      default: return Buffer.concat([out, Buffer.alloc(pick(9000), pick(256))]);
    }
  }
  return out;
}

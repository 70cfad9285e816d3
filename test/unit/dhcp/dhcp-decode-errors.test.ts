// Each way a DHCP message or frame can be malformed maps to its own DhcpDecodeError code.
import test from 'ava';
import { DhcpDecodeError, type DhcpDecodeErrorCode } from '../../../agent/dhcp/dhcp-decode-error';
import { DhcpFrameView, encodeDhcpFrame } from '../../../agent/dhcp/dhcp-frame-codec';
import { decodeDhcpPacket, encodeDhcpPacket, DhcpPacketView, MAX_DHCP_MESSAGE_BYTES } from '../../../agent/dhcp/dhcp-packet-codec';
import { BootpOffset, DhcpMessageType } from '../../../agent/dhcp/dhcp-option-codes';

const base = () => encodeDhcpPacket({ xid: 7, chaddr: '02:00:00:00:00:07', messageType: DhcpMessageType.DISCOVER, hostname: 'h' });

/** Packet with the options area replaced by `options` (END not added). */
function withOptions(options: number[]): Buffer {
  const p = Buffer.alloc(BootpOffset.OPTIONS + options.length);
  base().copy(p, 0, 0, BootpOffset.OPTIONS);
  Buffer.from(options).copy(p, BootpOffset.OPTIONS);
  return p;
}

function codeOf(fn: () => unknown): DhcpDecodeErrorCode | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof DhcpDecodeError) return err.code;
    throw err;
  }
  return undefined;
}

const packetCases: Array<[string, () => Buffer, DhcpDecodeErrorCode]> = [
  ['empty', () => Buffer.alloc(0), 'TRUNCATED'],
  ['header cut before the cookie', () => base().subarray(0, 200), 'TRUNCATED'],
  ['cookie but no options', () => base().subarray(0, BootpOffset.OPTIONS), 'MISSING_END'],
  ['wrong magic cookie', () => { const p = base(); p[BootpOffset.MAGIC] = 0x64; return p; }, 'BAD_MAGIC'],
  ['op 3', () => { const p = base(); p[0] = 3; return p; }, 'BAD_HEADER'],
  ['hlen 17', () => { const p = base(); p[BootpOffset.HLEN] = 17; return p; }, 'BAD_HEADER'],
  ['option length runs past the end', () => withOptions([53, 1, 1, 12, 40, 65]), 'TRUNCATED'],
  ['option code with no length byte', () => withOptions([53, 1, 1, 12]), 'TRUNCATED'],
  ['no END option', () => withOptions([53, 1, 1, 0, 0]), 'MISSING_END'],
  ['message type of 2 bytes', () => withOptions([53, 2, 1, 1, 255]), 'BAD_OPTION_LENGTH'],
  ['subnet mask of 3 bytes', () => withOptions([1, 3, 255, 255, 255, 255]), 'BAD_OPTION_LENGTH'],
  ['router list of 6 bytes', () => withOptions([3, 6, 1, 2, 3, 4, 5, 6, 255]), 'BAD_OPTION_LENGTH'],
  ['empty hostname', () => withOptions([12, 0, 255]), 'BAD_OPTION_LENGTH'],
  ['client id of 1 byte', () => withOptions([61, 1, 1, 255]), 'BAD_OPTION_LENGTH'],
  ['relay sub-option longer than option 82', () => withOptions([82, 4, 1, 5, 0x61, 0x62, 255]), 'BAD_OPTION_LENGTH'],
  ['overload value 4', () => withOptions([52, 1, 4, 255]), 'BAD_OVERLOAD'],
  ['overload twice', () => withOptions([52, 1, 1, 52, 1, 2, 255]), 'BAD_OVERLOAD'],
  [
    'option in the file field running past it',
    () => { const p = withOptions([52, 1, 1, 255]); p[BootpOffset.FILE + 120] = 15; p[BootpOffset.FILE + 121] = 20; return p; },
    'BAD_OPTION_LENGTH',
  ],
  [
    'overload inside the overloaded file field',
    () => { const p = withOptions([52, 1, 1, 255]); Buffer.from([52, 1, 2, 255]).copy(p, BootpOffset.FILE); return p; },
    'BAD_OVERLOAD',
  ],
  ['more options than anyone sends', () => withOptions([...Array.from({ length: 600 }, () => [250, 0]).flat(), 255]), 'TOO_MANY_OPTIONS'],
  ['larger than a jumbo frame', () => Buffer.concat([base(), Buffer.alloc(MAX_DHCP_MESSAGE_BYTES)]), 'OVERSIZED'],
];

for (const [name, make, code] of packetCases) {
  test(`packet: ${name} -> ${code}`, (t) => {
    t.is(codeOf(() => decodeDhcpPacket(make())), code);
    t.is(new DhcpPacketView().tryDecode(make()), code);
  });
}

test('the error names its code and offset and maps to INVALID_ARGUMENT', (t) => {
  const err = t.throws(() => decodeDhcpPacket(withOptions([53, 2, 1, 1, 255])), { instanceOf: DhcpDecodeError }) as DhcpDecodeError;
  t.is(err.reason, 'INVALID_ARGUMENT');
  t.is(err.offset, BootpOffset.OPTIONS);
  t.regex(err.message, /BAD_OPTION_LENGTH at byte 240/);
});

test('pad options and trailing bytes after END are accepted', (t) => {
  const m = decodeDhcpPacket(withOptions([0, 0, 53, 1, 3, 0, 255, 0xde, 0xad]));
  t.is(m.messageType, 3);
});

const frame = (over: Partial<Parameters<typeof encodeDhcpFrame>[0]> = {}) =>
  encodeDhcpFrame({ srcMac: '02:00:00:00:00:07', payload: base(), ...over });

function fixIpChecksum(f: Buffer, ip = 14): void {
  f.writeUInt16BE(0, ip + 10);
  let sum = 0;
  for (let i = ip; i < ip + 20; i += 2) sum += f.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  f.writeUInt16BE(0xffff - sum, ip + 10);
}

const frameCases: Array<[string, () => Buffer, DhcpDecodeErrorCode]> = [
  ['shorter than an Ethernet header', () => frame().subarray(0, 10), 'TRUNCATED'],
  ['ARP', () => { const f = frame(); f.writeUInt16BE(0x0806, 12); return f; }, 'NOT_IPV4'],
  ['three VLAN tags', () => { const f = frame({ vlanId: 5 }); return Buffer.concat([f.subarray(0, 12), Buffer.from([0x81, 0, 0, 6, 0x81, 0, 0, 7]), f.subarray(12)]); }, 'NOT_IPV4'],
  ['IPv6 version nibble', () => { const f = frame(); f[14] = 0x65; fixIpChecksum(f); return f; }, 'BAD_IP_HEADER'],
  ['IHL 4', () => { const f = frame(); f[14] = 0x44; return f; }, 'BAD_IP_HEADER'],
  ['wrong IP checksum', () => { const f = frame(); f[14 + 10] ^= 0xff; return f; }, 'BAD_IP_HEADER'],
  ['IP total length beyond the frame', () => { const f = frame(); f.writeUInt16BE(2000, 16); fixIpChecksum(f); return f; }, 'TRUNCATED'],
  ['frame cut in the DHCP message', () => frame().subarray(0, 200), 'TRUNCATED'],
  ['a fragment', () => { const f = frame(); f.writeUInt16BE(0x2000, 20); fixIpChecksum(f); return f; }, 'IP_FRAGMENT'],
  ['TCP', () => { const f = frame(); f[23] = 6; fixIpChecksum(f); return f; }, 'NOT_UDP'],
  ['UDP length beyond the datagram', () => { const f = frame(); f.writeUInt16BE(9999, 38); return f; }, 'BAD_UDP_LENGTH'],
  ['UDP length below its header', () => { const f = frame(); f.writeUInt16BE(4, 38); return f; }, 'BAD_UDP_LENGTH'],
  ['ports 53', () => frame({ srcPort: 53, dstPort: 53 }), 'NOT_DHCP_PORT'],
  ['bad magic inside a good frame', () => { const f = frame(); f[42 + BootpOffset.MAGIC] = 0; return f; }, 'BAD_MAGIC'],
];

for (const [name, make, code] of frameCases) {
  test(`frame: ${name} -> ${code}`, (t) => {
    t.is(new DhcpFrameView().tryDecode(make()), code);
    t.is(codeOf(() => new DhcpFrameView().decode(make())), code);
  });
}

test('a well-formed frame with Ethernet padding and a VLAN tag decodes', (t) => {
  const v = new DhcpFrameView();
  t.is(v.tryDecode(Buffer.concat([frame({ vlanId: 300 }), Buffer.alloc(30)])), null);
  t.is(v.vlanId, 300);
  t.is(v.packet.messageType, DhcpMessageType.DISCOVER);
  t.is(v.packet.optionText(12), 'h');
});

test('a shorter capture length than the buffer is honoured', (t) => {
  const f = frame();
  const big = Buffer.concat([f, Buffer.alloc(100, 0xee)]);
  t.is(new DhcpFrameView().tryDecode(big, f.length), null);
  t.is(new DhcpFrameView().tryDecode(big, 100), 'TRUNCATED');
});

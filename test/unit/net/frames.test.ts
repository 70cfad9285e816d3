// Announcement frames byte by byte: gratuitous ARP (request and reply forms) and unsolicited NA.
import test from 'ava';
import { buildGratuitousArp } from '../../../agent/net/arp-frame';
import { parseIp, parseMac } from '../../../shared/ip-address';
import { buildUnsolicitedNa, onesComplementChecksum } from '../../../agent/net/ndp-frame';

const mac = parseMac('52:54:00:12:34:56')!;

test('gratuitous ARP request: every byte', (t) => {
  const frame = buildGratuitousArp({ mac, ipv4: parseIp('10.77.0.100')!.bytes });
  const expected = Buffer.from(
    [
      'ffffffffffff', '525400123456', '0806', // Ethernet: broadcast, source, ARP
      '0001', '0800', '06', '04', '0001', // htype Ethernet, ptype IPv4, hlen, plen, op request
      '525400123456', '0a4d0064', // sender MAC, sender IP
      '000000000000', '0a4d0064', // target MAC (unknown), target IP = sender IP
      '00'.repeat(18), // padding to 60 bytes
    ].join(''),
    'hex',
  );
  t.is(frame.length, 60);
  t.deepEqual(frame, expected);
});

test('gratuitous ARP reply repeats the sender MAC as target MAC', (t) => {
  const frame = buildGratuitousArp({ mac, ipv4: Buffer.from([192, 168, 1, 9]), operation: 'reply' });
  t.is(frame.readUInt16BE(20), 2);
  t.deepEqual(frame.subarray(32, 38), mac);
  t.deepEqual(frame.subarray(38, 42), Buffer.from([192, 168, 1, 9]));
});

test('builders reject wrong address lengths', (t) => {
  t.throws(() => buildGratuitousArp({ mac: Buffer.alloc(5), ipv4: Buffer.alloc(4) }), { message: /mac/ });
  t.throws(() => buildGratuitousArp({ mac, ipv4: Buffer.alloc(16) }), { message: /ipv4/ });
  t.throws(() => buildUnsolicitedNa({ mac, ipv6: Buffer.alloc(4) }), { message: /ipv6/ });
});

test('unsolicited neighbor advertisement: every byte, checksum included', (t) => {
  const target = parseIp('fd00::64')!.bytes;
  const frame = buildUnsolicitedNa({ mac, ipv6: target });
  const header = Buffer.from(
    [
      '333300000001', '525400123456', '86dd', // Ethernet: all-nodes multicast, source, IPv6
      '60000000', '0020', '3a', 'ff', // version 6, payload 32, next header ICMPv6, hop limit 255
      'fd000000000000000000000000000064', // source = target
      'ff020000000000000000000000000001', // all-nodes
    ].join(''),
    'hex',
  );
  t.deepEqual(frame.subarray(0, 54), header);
  const icmp = frame.subarray(54);
  t.is(icmp.length, 32);
  t.is(icmp[0], 136);
  t.is(icmp[1], 0);
  t.deepEqual(icmp.subarray(4, 8), Buffer.from('20000000', 'hex'), 'Override only, not Solicited or Router');
  t.deepEqual(icmp.subarray(8, 24), target);
  t.deepEqual(icmp.subarray(24, 32), Buffer.from('0201525400123456', 'hex'));
  // Checksum computed separately (a Python RFC 1071 sum over pseudo-header + message).
  t.is(icmp.readUInt16BE(2), 0xd519);
  // And verified the receiver's way: the sum over pseudo-header and message folds to zero.
  const pseudo = Buffer.concat([frame.subarray(22, 54), Buffer.from('000000200000003a', 'hex')]);
  t.is(onesComplementChecksum(Buffer.concat([pseudo, icmp])), 0);
});

test('checksum of the RFC 1071 worked example', (t) => {
  // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2, so the checksum is its complement.
  t.is(onesComplementChecksum(Buffer.from('0001f203f4f5f6f7', 'hex')), ~0xddf2 & 0xffff);
  t.is(onesComplementChecksum(Buffer.from('01', 'hex')), ~0x0100 & 0xffff, 'odd length pads with a zero byte');
});

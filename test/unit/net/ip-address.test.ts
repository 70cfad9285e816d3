// Address parsing/formatting, table-driven, including the malformed inputs that must be refused.
import test from 'ava';
import { canonicalIp, formatIp, formatMac, parseIp, parseMac } from '../../../shared/ip-address';

const valid: Array<[string, string, 4 | 6]> = [
  ['10.0.0.1', '10.0.0.1', 4],
  ['255.255.255.255', '255.255.255.255', 4],
  ['::', '::', 6],
  ['::1', '::1', 6],
  ['fd00::5', 'fd00::5', 6],
  ['FD00:0:0:0:0:0:0:5', 'fd00::5', 6],
  ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1', 6],
  ['2001:db8::1:2:3:4:5', '2001:db8:0:1:2:3:4:5', 6],
  ['::ffff:10.1.2.3', '::ffff:a01:203', 6],
  ['fe80:0:0:0:0:0:0:0', 'fe80::', 6],
];
for (const [input, canonical, family] of valid) {
  test(`parses ${input}`, (t) => {
    const p = parseIp(input);
    t.is(p?.family, family);
    t.is(p?.bytes.length, family === 4 ? 4 : 16);
    t.is(canonicalIp(input), canonical);
  });
}

for (const bad of ['', '10.0.0', '10.0.0.256', '10.0.0.01', '1.2.3.4.5', 'a.b.c.d', ':::', '1::2::3', 'fd00::5/64', '1:2:3:4:5:6:7:8:9', '12345::', 'fe80::1%eth0', '1:2:3:4:5:6:7::8']) {
  test(`refuses ${JSON.stringify(bad)}`, (t) => {
    t.is(parseIp(bad), undefined);
  });
}

test('MAC parse and format', (t) => {
  t.deepEqual(parseMac('52:54:00:AB:cd:0F'), Buffer.from([0x52, 0x54, 0, 0xab, 0xcd, 0x0f]));
  t.is(formatMac(Buffer.from([0x52, 0x54, 0, 0xab, 0xcd, 0x0f])), '52:54:00:ab:cd:0f');
  for (const bad of ['52:54:00:ab:cd', '52-54-00-ab-cd-0f', '5254.00ab.cd0f', 'zz:54:00:ab:cd:0f', '']) t.is(parseMac(bad), undefined);
  t.throws(() => formatMac(Buffer.alloc(5)));
  t.throws(() => formatIp(Buffer.alloc(5)));
});

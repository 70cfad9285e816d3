// The IP config parser: canonical output, defaults, and one named field per mistake.
import test from 'ava';
import { parseIpActivationSpec } from '../../../agent/net/ip-activation-spec';

const base = { vmId: 'vm1', mode: 'bridged', address: '10.0.0.5', prefixLength: 24, interface: 'br0', tap: 'tap0', mac: '52:54:00:AA:00:01' };

test('a full bridged config parses to canonical text', (t) => {
  t.deepEqual(parseIpActivationSpec({ ...base, gateway: '10.0.0.1', vlan: 10 }), {
    vmId: 'vm1', mode: 'bridged', address: '10.0.0.5', prefixLength: 24, interface: 'br0', tap: 'tap0', mac: '52:54:00:aa:00:01', gateway: '10.0.0.1', vlan: 10,
  });
});

test('prefixLength defaults to a host prefix; IPv6 is canonicalised', (t) => {
  const s = parseIpActivationSpec({ vmId: 'v', mode: 'address', address: 'FD00:0::5', interface: 'eth0' });
  t.is(s.address, 'fd00::5');
  t.is(s.prefixLength, 128);
});

const mistakes: Array<[string, Record<string, unknown>, RegExp]> = [
  ['not an object', null as unknown as Record<string, unknown>, /ip_config/],
  ['unknown key', { ...base, color: 'red' }, /^color: unknown field/],
  ['empty vmId', { ...base, vmId: '' }, /^vmId/],
  ['bad mode', { ...base, mode: 'tunnel' }, /^mode: must be one of routed, bridged, address/],
  ['address with prefix', { ...base, address: '10.0.0.5/24' }, /^address/],
  ['prefix too long', { ...base, prefixLength: 33 }, /^prefixLength: must be an integer from 1 to 32/],
  ['gateway of the other family', { ...base, gateway: 'fd00::1' }, /^gateway: must be an IPv4 address/],
  ['interface too long', { ...base, interface: 'a-very-long-interface-name' }, /^interface/],
  ['bad mac', { ...base, mac: '52:54:00' }, /^mac/],
  ['vlan out of range', { ...base, vlan: 4095 }, /^vlan/],
  ['bridged without mac', { ...base, mac: undefined }, /^mac: is required in bridged mode/],
  ['routed without tap', { ...base, mode: 'routed', tap: undefined }, /^tap: is required in routed mode/],
];
for (const [what, raw, re] of mistakes) {
  test(`refuses ${what}`, (t) => {
    const clean = raw === null ? null : Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined));
    const err = t.throws(() => parseIpActivationSpec(clean));
    t.is((err as { reason?: string }).reason, 'INVALID_ARGUMENT');
    t.regex(err!.message, re);
  });
}

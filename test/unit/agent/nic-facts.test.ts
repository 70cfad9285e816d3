// NIC facts from os.networkInterfaces()-shaped input: loopback left out, MAC lower-cased, every
// address with its prefix, IPv6 link-local left out, speed as the reader says.
import test from 'ava';
import type os from 'node:os';
import { nicsFrom } from '../../../agent/os/nic-facts';

const v4 = (address: string, cidr: string, mac: string, internal = false): os.NetworkInterfaceInfo => ({ address, netmask: '255.255.255.0', family: 'IPv4', mac, internal, cidr });
const v6 = (address: string, cidr: string, mac: string): os.NetworkInterfaceInfo => ({ address, netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac, internal: false, cidr, scopeid: 0 });

test('interfaces with addresses become NICs, sorted by name; loopback does not', (t) => {
  const nics = nicsFrom(
    {
      lo: [v4('127.0.0.1', '127.0.0.1/8', '00:00:00:00:00:00', true)],
      eth1: [v4('10.1.0.5', '10.1.0.5/16', 'AA:BB:CC:00:00:02')],
      eth0: [v4('192.0.2.10', '192.0.2.10/24', '52:54:00:AA:00:01'), v6('fe80::5054:ff:feaa:1', 'fe80::5054:ff:feaa:1/64', '52:54:00:AA:00:01'), v6('2001:db8::10', '2001:db8::10/56', '52:54:00:AA:00:01'), v4('192.0.2.11', '192.0.2.11/32', '52:54:00:AA:00:01')],
    },
    (name) => (name === 'eth0' ? 25000 : 0),
  );
  t.deepEqual(nics, [
    { name: 'eth0', mac: '52:54:00:aa:00:01', speed_mbps: 25000, addresses: ['192.0.2.10/24', '2001:db8::10/56', '192.0.2.11/32'] },
    { name: 'eth1', mac: 'aa:bb:cc:00:00:02', speed_mbps: 0, addresses: ['10.1.0.5/16'] },
  ]);
});

test('an interface with only a link-local IPv6 address is listed without addresses; no interfaces, no NICs', (t) => {
  t.deepEqual(nicsFrom({ br0: [v6('fe80::1', 'fe80::1/64', '02:00:00:00:00:01')] }, () => 0), [{ name: 'br0', mac: '02:00:00:00:00:01', speed_mbps: 0, addresses: [] }]);
  t.deepEqual(nicsFrom({}, () => 0), []);
});

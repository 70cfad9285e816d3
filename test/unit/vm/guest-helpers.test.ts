// Pure parts of the test-guest helpers: module load order and the guest's stat line.
import test from 'ava';
import { guestKernelAppend, resolveModuleOrder } from '../../helpers/guest-image';
import { guestAddressFromSerial, parseGuestStat } from '../../helpers/guest/guest-stat';

const DEP = [
  'kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko',
  'kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko',
  'kernel/net/core/failover.ko:',
  'kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko',
  'kernel/drivers/virtio/virtio_ring.ko:',
  'kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko',
  'kernel/drivers/virtio/virtio_pci_legacy_dev.ko:',
  'kernel/drivers/virtio/virtio_pci_modern_dev.ko:',
].join('\n');

test('module order loads every dependency before its user, once each', (t) => {
  const order = resolveModuleOrder(['virtio_pci', 'virtio_net'], DEP, 'kernel/net/packet/af_packet.ko\n');
  t.deepEqual(new Set(order).size, order.length);
  const pos = (m: string): number => order.findIndex((o) => o.endsWith(`/${m}.ko`));
  t.true(pos('virtio_ring') < pos('virtio'));
  t.true(pos('virtio') < pos('virtio_pci'));
  t.true(pos('failover') < pos('net_failover'));
  t.true(pos('net_failover') < pos('virtio_net'));
  t.is(order.length, 8);
});

test('built-in modules are skipped; unknown modules are an error', (t) => {
  t.deepEqual(resolveModuleOrder(['af_packet'], DEP, 'kernel/net/packet/af_packet.ko\n'), []);
  t.throws(() => resolveModuleOrder(['e1000e'], DEP, ''), { message: /e1000e/ });
});

test('stat line parses; garbage does not', (t) => {
  t.deepEqual(parseGuestStat('counter=470 boot=5ce7ff4ebb62f450 fill_mb=152 fill_done=1 memwrite_mb=16 memwrite_passes=3\n'), {
    counter: 470,
    boot: '5ce7ff4ebb62f450',
    fillMb: 152,
    fillDone: true,
    memwriteMb: 16,
    memwritePasses: 3,
  });
  t.is(parseGuestStat('hello'), undefined);
  t.is(parseGuestStat('counter=x boot=5ce7ff4ebb62f450'), undefined);
  t.is(parseGuestStat('counter=1 boot=zz'), undefined);
});

test('guest address comes from the DHCP line of the console', (t) => {
  t.is(guestAddressFromSerial('udhcpc: started\numbra-dhcp-bound ip=10.77.0.115 mask=24 router=10.77.0.1\n'), '10.77.0.115');
  t.is(guestAddressFromSerial('udhcpc: broadcasting discover\n'), undefined);
});

test('kernel command line carries the workload settings', (t) => {
  const append = guestKernelAppend({ port: 7100, fillPct: 75, memwriteMb: 32, memwriteRateMbps: 0 });
  t.true(append.startsWith('console=ttyS0'));
  for (const p of ['umbra.port=7100', 'umbra.fill_pct=75', 'umbra.memwrite_mb=32', 'umbra.memwrite_rate=0']) t.true(append.split(' ').includes(p), p);
});

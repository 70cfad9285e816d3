// A guest's passed-through devices from its QEMU command line, in both -device syntaxes, and which
// of them are the host's GPUs.
import test from 'ava';
import { normalizePciAddress } from '../../../agent/os/pci-address';
import { gpuModelsHeld, vfioHostAddresses } from '../../../agent/profiler/vfio-devices';

test('PCI addresses normalize to the sysfs form; anything else is no address', (t) => {
  t.is(normalizePciAddress('65:00.0'), '0000:65:00.0');
  t.is(normalizePciAddress('0000:B3:00.1'), '0000:b3:00.1');
  t.is(normalizePciAddress('1:3.7'), '0000:01:03.7');
  t.is(normalizePciAddress('0001:65:00.0'), '0001:65:00.0');
  for (const bad of ['', '65:00', '65:00.8', 'zz:00.0', '0000:65:00.0.1']) t.is(normalizePciAddress(bad), undefined, bad);
});

test('vfio-pci devices in key=value and JSON form, by host= or sysfsdev=; other devices ignored', (t) => {
  const argv = [
    'qemu-system-x86_64', '-name', 'gpu1', '-m', '4096',
    '-device', 'virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56',
    '-device', 'vfio-pci,host=65:00.0,id=gpu0,x-vga=on',
    '--device', 'driver=vfio-pci,host=0000:65:00.1',
    '-device', '{"driver":"vfio-pci","host":"0000:b3:00.0","id":"hostdev1","bus":"pci.7"}',
    '-device', 'vfio-pci,sysfsdev=/sys/bus/pci/devices/0000:17:00.0,id=nvme',
    '-device', 'vfio-pci,host=65:00.0',
    '-device', '{"driver":"virtio-blk-pci","drive":"d0"}',
    '-device', '{not json',
    '-device',
  ];
  t.deepEqual(vfioHostAddresses(argv), ['0000:65:00.0', '0000:65:00.1', '0000:b3:00.0', '0000:17:00.0']);
  t.deepEqual(vfioHostAddresses(['qemu-system-x86_64', '-device', 'vfio-pci', '-name', 'host=65:00.0']), [], 'no host property: no address');
});

test('only the GPUs among the devices count, named as the host names them; one entry per device', (t) => {
  const gpus = new Map([
    ['0000:65:00.0', 'NVIDIA Corporation GA100 [A100 PCIe 40GB]'],
    ['0000:b3:00.0', 'NVIDIA Corporation GA100 [A100 PCIe 40GB]'],
  ]);
  t.deepEqual(gpuModelsHeld(['0000:65:00.0', '0000:65:00.1', '0000:b3:00.0', '0000:17:00.0'], gpus), [
    'NVIDIA Corporation GA100 [A100 PCIe 40GB]',
    'NVIDIA Corporation GA100 [A100 PCIe 40GB]',
  ]);
});

// VM definition validation (errors name the field) and the QEMU command lines it produces.
import test from 'ava';
import { InvalidArgumentError } from '../../../shared/errors';
import { GUEST_RAM_BACKEND_ID, parseVmDefinition, toQemuArgs } from '../../../agent/vm/vm-definition';

const MIB = 1024 * 1024;
const base = {
  id: 'web-1',
  memorySizeBytes: 256 * MIB,
  boot: { kind: 'kernel', kernelPath: '/boot/vmlinuz', initrdPath: '/var/tmp/initrd.gz', append: 'console=ttyS0 quiet' },
  nics: [{ mac: '52:54:00:AA:00:01', tapName: 'tap-web1' }],
  qmpSocketPath: '/run/umbra/web-1.qmp',
  serialLogPath: '/var/log/umbra/web-1.serial',
};

function argValue(args: string[], flag: string): string[] {
  const out: string[] = [];
  args.forEach((a, i) => {
    if (a === flag) out.push(args[i + 1]);
  });
  return out;
}

test('defaults are filled in and the MAC is normalised', (t) => {
  const def = parseVmDefinition(base);
  t.is(def.machine, 'pc');
  t.is(def.cpuModel, 'qemu64');
  t.is(def.vcpus, 1);
  t.is(def.accel, 'tcg');
  t.deepEqual(def.memoryBackend, { kind: 'memfd' });
  t.deepEqual(def.nics, [{ mac: '52:54:00:aa:00:01', tapName: 'tap-web1', netdevId: 'net0', model: 'virtio-net-pci' }]);
});

const bad: Array<[string, Record<string, unknown>, string]> = [
  ['not an object', { nics: 'x' }, 'vm.nics'],
  ['id with a slash', { id: 'a/b' }, 'vm.id'],
  ['memory not whole MiB', { memorySizeBytes: 256 * MIB + 1 }, 'vm.memorySizeBytes'],
  ['memory too small', { memorySizeBytes: 8 * MIB }, 'vm.memorySizeBytes'],
  ['zero vcpus', { vcpus: 0 }, 'vm.vcpus'],
  ['fractional vcpus', { vcpus: 1.5 }, 'vm.vcpus'],
  ['anonymous RAM', { memoryBackend: { kind: 'ram' } }, 'vm.memoryBackend.kind'],
  ['relative RAM file', { memoryBackend: { kind: 'file', path: 'ram.img' } }, 'vm.memoryBackend.path'],
  ['comma in a path (option injection)', { qmpSocketPath: '/run/a,server=off' }, 'vm.qmpSocketPath'],
  ['multicast MAC', { nics: [{ mac: '01:00:5e:00:00:01', tapName: 't0' }] }, 'vm.nics[0].mac'],
  ['bad MAC', { nics: [{ mac: '52:54:00:aa:00', tapName: 't0' }] }, 'vm.nics[0].mac'],
  ['tap name too long', { nics: [{ mac: '52:54:00:aa:00:01', tapName: 'a-very-long-tap-name' }] }, 'vm.nics[0].tapName'],
  ['duplicate netdev ids', { nics: [{ mac: '52:54:00:aa:00:01', tapName: 't0', netdevId: 'n' }, { mac: '52:54:00:aa:00:02', tapName: 't1', netdevId: 'n' }] }, 'vm.nics[1].netdevId'],
  ['unknown NIC model', { nics: [{ mac: '52:54:00:aa:00:01', tapName: 't0', model: 'rtl8139' }] }, 'vm.nics[0].model'],
  ['unknown boot kind', { boot: { kind: 'pxe' } }, 'vm.boot.kind'],
  ['kernel without path', { boot: { kind: 'kernel' } }, 'vm.boot.kernelPath'],
  ['disk with bad format', { boot: { kind: 'disk', diskPath: '/d.img', format: 'vmdk' } }, 'vm.boot.format'],
  ['unknown accelerator', { accel: 'hvf' }, 'vm.accel'],
  ['machine with options smuggled in', { machine: 'pc,accel=kvm' }, 'vm.machine'],
];

for (const [name, patch, field] of bad) {
  test(`rejects ${name}, naming ${field}`, (t) => {
    const err = t.throws(() => parseVmDefinition({ ...base, ...patch }));
    t.true(err instanceof InvalidArgumentError, String(err));
    t.is((err as InvalidArgumentError).field, field);
  });
}

test('rejects a non-object', (t) => {
  const err = t.throws(() => parseVmDefinition('vm'));
  t.is((err as InvalidArgumentError).field, 'vm');
});

test('source command line: memfd RAM shared, machine uses it, QMP and serial wired, tap NIC without ROM', (t) => {
  const args = toQemuArgs(parseVmDefinition({ ...base, vcpus: 2, cpuModel: 'Haswell-noTSX' }));
  t.deepEqual(argValue(args, '-accel'), ['tcg']);
  t.deepEqual(argValue(args, '-machine'), [`pc,memory-backend=${GUEST_RAM_BACKEND_ID}`]);
  t.deepEqual(argValue(args, '-object'), [`memory-backend-memfd,id=${GUEST_RAM_BACKEND_ID},size=256M,share=on`]);
  t.deepEqual(argValue(args, '-m'), ['256M']);
  t.deepEqual(argValue(args, '-smp'), ['2']);
  t.deepEqual(argValue(args, '-cpu'), ['Haswell-noTSX']);
  t.deepEqual(argValue(args, '-chardev'), ['socket,id=umbra-qmp,path=/run/umbra/web-1.qmp,server=on,wait=off', 'file,id=umbra-serial,path=/var/log/umbra/web-1.serial']);
  t.deepEqual(argValue(args, '-mon'), ['chardev=umbra-qmp,mode=control']);
  t.deepEqual(argValue(args, '-netdev'), ['tap,id=net0,ifname=tap-web1,script=no,downscript=no']);
  t.deepEqual(argValue(args, '-device'), ['virtio-net-pci,netdev=net0,mac=52:54:00:aa:00:01,id=net0-dev,romfile=']);
  t.deepEqual(argValue(args, '-kernel'), ['/boot/vmlinuz']);
  t.deepEqual(argValue(args, '-append'), ['console=ttyS0 quiet']);
  t.false(args.includes('-incoming'));
  t.false(args.includes('-S'));
  t.true(args.includes('-nodefaults'));
  t.deepEqual(argValue(args, '-global'), ['migration.store-global-state=off']);
});

test('shadow command line: same devices, RAM on a shared file, own tap and sockets, -incoming defer', (t) => {
  const def = parseVmDefinition(base);
  const src = toQemuArgs(def);
  const shadow = toQemuArgs(def, {
    incoming: 'defer',
    ramFile: '/var/lib/umbra/shadow/web-1.ram',
    tapNames: { net0: 'tap-web1s' },
    qmpSocketPath: '/run/umbra/web-1-shadow.qmp',
    serialLogPath: '/var/log/umbra/web-1-shadow.serial',
    startPaused: true,
  });
  t.deepEqual(argValue(shadow, '-object'), [`memory-backend-file,id=${GUEST_RAM_BACKEND_ID},size=256M,mem-path=/var/lib/umbra/shadow/web-1.ram,share=on`]);
  t.deepEqual(argValue(shadow, '-incoming'), ['defer']);
  t.true(shadow.includes('-S'));
  t.deepEqual(argValue(shadow, '-netdev'), ['tap,id=net0,ifname=tap-web1s,script=no,downscript=no']);
  // The guest-visible device set (what the migration stream must match) is unchanged.
  t.deepEqual(argValue(shadow, '-device'), argValue(src, '-device'));
  t.deepEqual(argValue(shadow, '-machine'), argValue(src, '-machine'));
  t.deepEqual(argValue(shadow, '-cpu'), argValue(src, '-cpu'));
});

test('shadow RAM prefaulted on request (prealloc=on, which keeps the image contents); never otherwise', (t) => {
  const def = parseVmDefinition(base);
  const ramFile = '/var/lib/umbra/shadow/web-1.ram';
  t.deepEqual(argValue(toQemuArgs(def, { ramFile, prefaultRam: true }), '-object'), [`memory-backend-file,id=${GUEST_RAM_BACKEND_ID},size=256M,mem-path=${ramFile},share=on,prealloc=on`]);
  t.false(toQemuArgs(def, { ramFile }).join(' ').includes('prealloc'));
  t.false(toQemuArgs(def).join(' ').includes('prealloc'));
});

test('file-backed definition and disk boot', (t) => {
  const def = parseVmDefinition({ ...base, memoryBackend: { kind: 'file', path: '/dev/shm/web-1.ram' }, boot: { kind: 'disk', diskPath: '/var/lib/vm/web-1.qcow2', format: 'qcow2' }, accel: 'kvm' });
  const args = toQemuArgs(def);
  t.deepEqual(argValue(args, '-object'), [`memory-backend-file,id=${GUEST_RAM_BACKEND_ID},size=256M,mem-path=/dev/shm/web-1.ram,share=on`]);
  t.deepEqual(argValue(args, '-drive'), ['file=/var/lib/vm/web-1.qcow2,if=virtio,format=qcow2']);
  t.deepEqual(argValue(args, '-accel'), ['kvm']);
  t.false(args.includes('-kernel'));
});

test('bad overrides are rejected with the option named', (t) => {
  const def = parseVmDefinition(base);
  t.is(t.throws(() => toQemuArgs(def, { ramFile: 'rel.ram' }), { instanceOf: InvalidArgumentError })?.field, 'ramFile');
  t.is(t.throws(() => toQemuArgs(def, { tapNames: { net0: 'x'.repeat(16) } }), { instanceOf: InvalidArgumentError })?.field, 'tapNames.net0');
});

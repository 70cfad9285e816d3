// Reading VM definitions back from QEMU command lines: our own (round trip) and hand-written ones.
import test from 'ava';
import { parseQemuCmdline, parseQemuSize, splitQemuOption } from '../../../agent/vm/qemu-cmdline-parser';
import { isQemuArgv, splitProcCmdline } from '../../../agent/vm/qemu-discovery';
import { parseVmDefinition, toQemuArgs } from '../../../agent/vm/vm-definition';

const MIB = 1024 * 1024;
const defs = {
  'memfd + kernel': {
    id: 'g1', vcpus: 2, cpuModel: 'Haswell-noTSX', memorySizeBytes: 128 * MIB,
    boot: { kind: 'kernel', kernelPath: '/boot/vmlinuz', initrdPath: '/var/tmp/i.gz', append: 'console=ttyS0 umbra.port=7007' },
    nics: [{ mac: '52:54:00:77:00:10', tapName: 'tap-g1' }, { mac: '52:54:00:77:00:11', tapName: 'tap-g1b', netdevId: 'n2', model: 'e1000' }],
    qmpSocketPath: '/run/umbra/g1.qmp', serialLogPath: '/var/log/umbra/g1.serial',
  },
  'file + disk + kvm': {
    id: 'db.2', machine: 'q35', memorySizeBytes: 2048 * MIB, memoryBackend: { kind: 'file', path: '/dev/shm/db.ram' },
    boot: { kind: 'disk', diskPath: '/var/lib/vm/db.qcow2', format: 'qcow2' }, nics: [],
    qmpSocketPath: '/run/db.qmp', serialLogPath: '/var/log/db.serial', accel: 'kvm',
  },
};

for (const [name, raw] of Object.entries(defs)) {
  test(`round trip through the command line: ${name}`, (t) => {
    const def = parseVmDefinition(raw);
    const parsed = parseQemuCmdline(['/usr/bin/qemu-system-x86_64', ...toQemuArgs(def)]);
    t.deepEqual(parsed.problems, []);
    t.is(parsed.qmpSocketPath, def.qmpSocketPath);
    t.deepEqual(parsed.definition, def);
  });
}

test('a shadow command line reads back as its RAM file and own tap', (t) => {
  const def = parseVmDefinition(defs['memfd + kernel']);
  const parsed = parseQemuCmdline(['qemu-system-x86_64', ...toQemuArgs(def, { incoming: 'defer', ramFile: '/var/lib/umbra/shadow/g1.ram', tapNames: { net0: 'tap-g1s' }, prefaultRam: true })]);
  t.deepEqual(parsed.definition?.memoryBackend, { kind: 'file', path: '/var/lib/umbra/shadow/g1.ram' });
  t.is(parsed.definition?.nics[0].tapName, 'tap-g1s');
});

test('hand-written forms: -qmp unix:, -serial file:, -m 1G, -smp cpus=, -name guest=', (t) => {
  const parsed = parseQemuCmdline([
    'qemu-system-x86_64', '-name', 'guest=web,debug-threads=on', '-enable-kvm', '-m', '1G', '-smp', 'cpus=4,sockets=1',
    '-object', 'memory-backend-file,id=mem,size=1G,mem-path=/dev/hugepages/web,share=on', '-machine', 'pc-i440fx-7.2,memory-backend=mem',
    '-qmp', 'unix:/run/web.qmp,server=on,wait=off', '-serial', 'file:/var/log/web.log', '-kernel', '/k', '-append', '-quiet',
  ]);
  t.deepEqual(parsed.problems, []);
  t.is(parsed.name, 'web');
  t.is(parsed.definition?.accel, 'kvm');
  t.is(parsed.definition?.vcpus, 4);
  t.is(parsed.definition?.memorySizeBytes, 1024 * MIB);
  t.is(parsed.definition?.machine, 'pc-i440fx-7.2');
  t.is(parsed.qmpSocketPath, '/run/web.qmp');
  t.is(parsed.definition?.serialLogPath, '/var/log/web.log');
  t.deepEqual(parsed.definition?.boot, { kind: 'kernel', kernelPath: '/k', initrdPath: undefined, append: '-quiet' });
});

test('private RAM and user-mode networking are reported as problems, QMP path still found', (t) => {
  const parsed = parseQemuCmdline(['qemu-system-x86_64', '-name', 'x', '-m', '512', '-qmp', 'unix:/run/x.qmp,server,nowait', '-netdev', 'user,id=u0', '-device', 'virtio-net-pci,netdev=u0']);
  t.is(parsed.qmpSocketPath, '/run/x.qmp');
  t.is(parsed.definition, undefined);
  t.true(parsed.problems.some((p) => /shared memory backend/.test(p)));
  t.true(parsed.problems.some((p) => /not a tap/.test(p)));
});

test('option splitting honours escaped commas; sizes parse with units', (t) => {
  const { head, props } = splitQemuOption('file,id=a,path=/tmp/a,,b,server');
  t.is(head, 'file');
  t.is(props.get('path'), '/tmp/a,b');
  t.is(props.get('server'), 'on');
  t.is(parseQemuSize('256', 'M'), 256 * MIB);
  t.is(parseQemuSize('268435456', 'B'), 256 * MIB);
  t.is(parseQemuSize('2G', 'B'), 2048 * MIB);
  t.is(parseQemuSize('lots', 'M'), undefined);
});

test('/proc cmdline splitting and QEMU binary detection', (t) => {
  t.deepEqual(splitProcCmdline(['qemu-system-x86_64', '-m', '256', ''].join('\x00')), ['qemu-system-x86_64', '-m', '256']);
  t.true(isQemuArgv(['/usr/bin/qemu-system-x86_64']));
  t.true(isQemuArgv(['/usr/libexec/qemu-kvm']));
  t.false(isQemuArgv(['/usr/bin/qemu-img']));
  t.false(isQemuArgv([]));
});

// The GPUs of a running process's guest, read from its real /proc/PID/cmdline: the host's GPU
// list is asked for only when the command line has vfio devices, and once.
import test from 'ava';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { VmGpuReader } from '../../../agent/profiler/vm-gpus';

const children: ChildProcess[] = [];
test.after.always(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

/** A stand-in QEMU: a process whose argv holds the given -device values (it ends itself after 30 s). */
async function processWithDevices(devices: string[]): Promise<number> {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000); console.log("up")', '--', ...devices.flatMap((d) => ['-device', d])], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  await once(child.stdout!, 'data');
  return child.pid!;
}

test('a process holding a GPU and a NIC through vfio-pci: the GPU only; a plain one: none, without listing GPUs', async (t) => {
  let listed = 0;
  const reader = new VmGpuReader(async () => {
    listed++;
    return new Map([['0000:65:00.0', 'NVIDIA A100']]);
  });
  const plain = await processWithDevices(['virtio-net-pci,netdev=n0']);
  t.deepEqual(await reader.of(plain), []);
  t.is(listed, 0);
  const gpu = await processWithDevices(['vfio-pci,host=65:00.0,id=gpu0', '{"driver":"vfio-pci","host":"0000:17:00.0"}']);
  t.deepEqual(await reader.of(gpu), ['NVIDIA A100']);
  t.deepEqual(await reader.of(gpu), ['NVIDIA A100']);
  t.is(listed, 1);
});

test('a process that is gone is an error, not an empty list', async (t) => {
  const child = spawn(process.execPath, ['-e', '0']);
  await once(child, 'exit');
  await t.throwsAsync(new VmGpuReader(async () => new Map()).of(child.pid!), { code: 'ENOENT' });
});

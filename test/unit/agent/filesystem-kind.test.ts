import test from 'ava';
import { filesystemKind, filesystemOf } from '../../../agent/os/filesystem-kind';
import { imageDirCapability } from '../../../agent/replication/replication-module';

test('memory file systems are told from disk ones by their statfs magic', (t) => {
  t.deepEqual(filesystemKind(0x01021994), { name: 'tmpfs', inMemory: true });
  t.deepEqual(filesystemKind(0x958458f6), { name: 'hugetlbfs', inMemory: true });
  t.deepEqual(filesystemKind(0xef53), { name: 'ext4', inMemory: false });
  t.deepEqual(filesystemKind(0x58465342), { name: 'xfs', inMemory: false });
});

test('a magic read back as a negative number is the same file system', (t) => {
  t.deepEqual(filesystemKind(0x958458f6 | 0), { name: 'hugetlbfs', inMemory: true });
});

test('an unknown file system is named by its magic and counted as disk', (t) => {
  t.deepEqual(filesystemKind(0x1234), { name: '0x1234', inMemory: false });
});

test('the shadow image dir capability says what a disk-backed dir costs, and a tmpfs one does not', async (t) => {
  const onDisk = await imageDirCapability('/var/lib/umbra/agent/shadow', async () => ({ name: 'ext4', inMemory: false }));
  t.true(onDisk.available);
  t.regex(onDisk.detail, /^\/var\/lib\/umbra\/agent\/shadow on ext4 \(disk\): .*written back/);
  const inMemory = await imageDirCapability('/dev/shm/umbra', async () => ({ name: 'tmpfs', inMemory: true }));
  t.is(inMemory.detail, '/dev/shm/umbra on tmpfs (memory)');
  const broken = await imageDirCapability('/x', async () => {
    throw new Error('EACCES: permission denied');
  });
  t.false(broken.available);
  t.regex(broken.detail, /EACCES/);
  const huge = await imageDirCapability('/dev/hugepages/umbra', async () => ({ name: 'hugetlbfs', inMemory: true }));
  t.false(huge.available);
  t.regex(huge.detail, /cannot be written/);
});

test('a statfs that never answers (a hung network mount) ends in an error within the bound', async (t) => {
  const err = await t.throwsAsync(filesystemOf('/mnt/nfs/shadow', 20, () => new Promise<never>(() => undefined)));
  t.regex(err!.message, /no answer within 20 ms/);
});

test('a dir that does not exist yet is judged by its nearest existing ancestor', async (t) => {
  const asked: string[] = [];
  const kind = await filesystemOf('/dev/shm/umbra/not/yet', 1000, async (p) => {
    asked.push(p);
    if (p !== '/dev/shm') throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
    return { type: 0x01021994 };
  });
  t.deepEqual(kind, { name: 'tmpfs', inMemory: true });
  t.deepEqual(asked, ['/dev/shm/umbra/not/yet', '/dev/shm/umbra/not', '/dev/shm/umbra', '/dev/shm']);
});

import test from 'ava';
import { filesystemKind } from '../../../agent/os/filesystem-kind';
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

test('the shadow image dir capability says what a disk-backed dir costs, and a tmpfs one does not', (t) => {
  const onDisk = imageDirCapability('/var/lib/umbra/agent/shadow', () => ({ name: 'ext4', inMemory: false }));
  t.true(onDisk.available);
  t.regex(onDisk.detail, /^\/var\/lib\/umbra\/agent\/shadow on ext4 \(disk\): .*written back/);
  const inMemory = imageDirCapability('/dev/shm/umbra', () => ({ name: 'tmpfs', inMemory: true }));
  t.is(inMemory.detail, '/dev/shm/umbra on tmpfs (memory)');
  const broken = imageDirCapability('/x', () => {
    throw new Error('EACCES: permission denied');
  });
  t.false(broken.available);
  t.regex(broken.detail, /EACCES/);
});

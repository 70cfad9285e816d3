// What kind of file system a directory is on (statfs f_type), for where shadow images live: on a
// memory file system a shadow stays warm (its pages cannot be evicted to disk and read back after
// a switchover) and replication writes nothing to disk; on a disk file system every synced epoch
// is written out, and a guest promoted there runs on a file whose dirty pages are written back.
import { existsSync, statfsSync } from 'node:fs';
import path from 'node:path';

export interface FilesystemKind {
  /** Short name (tmpfs, ext4, xfs...), or the magic number in hex when not one of the known ones. */
  name: string;
  /** Pages live in memory only: tmpfs, hugetlbfs, ramfs. */
  inMemory: boolean;
}

// Values from the kernel's include/uapi/linux/magic.h.
const KNOWN: ReadonlyMap<number, FilesystemKind> = new Map([
  [0x01021994, { name: 'tmpfs', inMemory: true }],
  [0x958458f6, { name: 'hugetlbfs', inMemory: true }],
  [0x858458f6, { name: 'ramfs', inMemory: true }],
  [0xef53, { name: 'ext4', inMemory: false }],
  [0x58465342, { name: 'xfs', inMemory: false }],
  [0x9123683e, { name: 'btrfs', inMemory: false }],
  [0x2fc12fc1, { name: 'zfs', inMemory: false }],
  [0x794c7630, { name: 'overlayfs', inMemory: false }],
  [0x6969, { name: 'nfs', inMemory: false }],
  [0xff534d42, { name: 'cifs', inMemory: false }],
  [0x65735546, { name: 'fuse', inMemory: false }],
]);

/** The kind of file system whose statfs f_type is `type`; unknown ones count as disk-backed. */
export function filesystemKind(type: number): FilesystemKind {
  // statfs gives f_type as a signed long on some platforms: 0xff534d42 may come back negative.
  return KNOWN.get(type >>> 0) ?? { name: `0x${(type >>> 0).toString(16)}`, inMemory: false };
}

/** The file system `dir` is on, or (while it does not exist yet) its nearest existing ancestor's. */
export function filesystemOf(dir: string): FilesystemKind {
  let at = path.resolve(dir);
  while (!existsSync(at) && path.dirname(at) !== at) at = path.dirname(at);
  return filesystemKind(statfsSync(at).type);
}

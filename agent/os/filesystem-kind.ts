// What kind of file system a directory is on (statfs f_type), for where shadow images live. On a
// memory file system a shadow stays warm (its clean pages are not dropped, to be read back from
// disk after a switchover) and replication writes nothing to disk. On a disk file system every
// synced epoch is written out, and a guest promoted there has its dirty RAM written back.
import { statfs } from 'node:fs/promises';
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

/** A hung network mount would hold statfs (on the thread pool) for good; health does not wait that long. */
export const STATFS_TIMEOUT_MS = 2000;

/**
 * The file system `dir` is on, or (while it does not exist yet) its nearest existing ancestor's.
 * Asynchronous and bounded: the directory may sit on a network mount that stopped answering.
 */
export async function filesystemOf(
  dir: string,
  timeoutMs = STATFS_TIMEOUT_MS,
  statfsOf: (dir: string) => Promise<{ type: number }> = statfs,
): Promise<FilesystemKind> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`statfs gave no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([statfsNearest(path.resolve(dir), statfsOf), late]);
  } finally {
    clearTimeout(timer);
  }
}

async function statfsNearest(dir: string, statfsOf: (dir: string) => Promise<{ type: number }>): Promise<FilesystemKind> {
  for (let at = dir; ; at = path.dirname(at)) {
    try {
      return filesystemKind((await statfsOf(at)).type);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || path.dirname(at) === at) throw err;
    }
  }
}

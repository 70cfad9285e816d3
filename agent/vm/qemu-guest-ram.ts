// Finds a running QEMU's guest RAM from outside the process (its memfd or backing file, reached
// through /proc/PID/fd) and copies it, e.g. into a shadow image while the source is stopped.
import { promises as fs } from 'node:fs';
import { NotFoundError } from '../../shared/errors';

/** QEMU names the memfd after the backend type; the link reads "/memfd:<name> (deleted)". */
const MEMFD_LINK_PREFIX = '/memfd:';
const COPY_CHUNK_BYTES = 4 * 1024 * 1024;

export interface GuestRamLocation {
  /** /proc/PID/fd/N: opening it opens the same memory as QEMU's mapping. */
  procFdPath: string;
  /** What the fd link points at (memfd name or the backing file's path). */
  target: string;
  sizeBytes: number;
}

/**
 * The fd of `pid` that holds guest RAM of `sizeBytes`: a memfd, or the backing file when
 * `backingFile` is given. Throws NotFoundError when none matches.
 */
export async function findGuestRam(pid: number, sizeBytes: number, backingFile?: string): Promise<GuestRamLocation> {
  const dir = `/proc/${pid}/fd`;
  const fds = await fs.readdir(dir);
  for (const fd of fds) {
    const procFdPath = `${dir}/${fd}`;
    let target: string;
    try {
      target = await fs.readlink(procFdPath);
    } catch {
      continue; // closed meanwhile
    }
    const wanted = backingFile !== undefined ? target === backingFile : target.startsWith(MEMFD_LINK_PREFIX);
    if (!wanted) continue;
    const st = await fs.stat(procFdPath).catch(() => undefined);
    if (st && st.size === sizeBytes) return { procFdPath, target, sizeBytes };
  }
  throw new NotFoundError('guest RAM of QEMU process', `${pid} (${sizeBytes} bytes)`);
}

/**
 * Copies guest RAM into `destPath`. A new file is written sparse (zero chunks left as holes); an
 * existing one (e.g. a shadow image a shadow QEMU already maps) is updated in place, never
 * truncated, with every chunk written. Consistent only while the guest is stopped.
 */
export async function copyGuestRam(src: GuestRamLocation, destPath: string): Promise<{ bytesCopied: number }> {
  const existed = await fs.stat(destPath).then(() => true, () => false);
  const input = await fs.open(src.procFdPath, 'r');
  const output = await fs.open(destPath, existed ? 'r+' : 'w');
  let bytesCopied = 0;
  try {
    if ((await output.stat()).size < src.sizeBytes) await output.truncate(src.sizeBytes);
    const buf = Buffer.alloc(COPY_CHUNK_BYTES);
    for (let off = 0; off < src.sizeBytes; off += COPY_CHUNK_BYTES) {
      const want = Math.min(COPY_CHUNK_BYTES, src.sizeBytes - off);
      const { bytesRead } = await input.read(buf, 0, want, off);
      if (bytesRead === 0) break;
      if (!existed && isAllZero(buf, bytesRead)) continue;
      await output.write(buf, 0, bytesRead, off);
      bytesCopied += bytesRead;
    }
  } finally {
    await input.close();
    await output.close();
  }
  return { bytesCopied };
}

const ZERO_CHUNK = Buffer.alloc(COPY_CHUNK_BYTES);

function isAllZero(buf: Buffer, len: number): boolean {
  return buf.subarray(0, len).equals(ZERO_CHUNK.subarray(0, len));
}

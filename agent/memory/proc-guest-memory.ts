// GuestMemory over /proc: finds the RAM mapping in /proc/PID/maps and opens its backing object
// through /proc/PID/map_files (memfd, shm or file alike), read without stopping the process.
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { NotFoundError } from '../../shared/errors';
import type { GuestMemory, GuestRamRegion } from './guest-memory';
import { native } from './native-binding';
import { findRamMapping, parseProcMaps, type RamMappingQuery } from './proc-maps';

/** Finds the guest RAM region of process `pid` (a QEMU with shared memory, or any process with a shared mapping). */
export function locateGuestRam(pid: number, query: RamMappingQuery): GuestRamRegion {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/maps`, 'utf8');
  } catch (err) {
    throw new NotFoundError('process', String(pid), { cause: err });
  }
  const entry = findRamMapping(parseProcMaps(text), query);
  if (!entry) {
    throw new NotFoundError('shared RAM mapping', `pid ${pid}, ${query.sizeBytes} bytes${query.pathContains ? `, path ~ ${query.pathContains}` : ''}`);
  }
  return {
    pid,
    startAddress: entry.startAddress,
    sizeBytes: entry.endAddress - entry.startAddress,
    pageSizeBytes: native.pageSize(),
    fileOffsetBytes: entry.fileOffsetBytes,
    backingPath: entry.path,
  };
}

export class ProcGuestMemory implements GuestMemory {
  readonly pageCount: number;
  readonly fd: number;

  private constructor(readonly region: GuestRamRegion, fd: number) {
    this.fd = fd;
    this.pageCount = Math.floor(region.sizeBytes / region.pageSizeBytes);
  }

  /** Opens the region's backing object read-only (needs CAP_SYS_ADMIN for map_files, i.e. root). */
  static open(region: GuestRamRegion): ProcGuestMemory {
    const name = `${region.startAddress.toString(16)}-${(region.startAddress + region.sizeBytes).toString(16)}`;
    let fd: number;
    try {
      fd = openSync(`/proc/${region.pid}/map_files/${name}`, 'r');
    } catch (err) {
      throw new NotFoundError('guest RAM backing object', `/proc/${region.pid}/map_files/${name}`, { cause: err });
    }
    return new ProcGuestMemory(region, fd);
  }

  readPages(index: number, count: number, into: Buffer): void {
    const page = this.region.pageSizeBytes;
    const want = count * page;
    let done = 0;
    while (done < want) {
      const n = readSync(this.fd, into, done, want - done, this.region.fileOffsetBytes + index * page + done);
      if (n === 0) {
        into.fill(0, done, want); // beyond the end of the object reads as zero, like an unpopulated page
        return;
      }
      done += n;
    }
  }

  close(): void {
    closeSync(this.fd);
  }
}

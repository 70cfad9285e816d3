// Typed interface over the native addon (native/umbra_memory.c): the only file that loads it.
// Errors from the addon carry an errno name in `.code`; they surface here as NativeCallError.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { UmbraError, type ErrorReason } from '../../shared/errors';

const BUILD_DIR_CANDIDATES = [
  path.join(__dirname, '..', '..', 'build', 'Release'), // from agent/memory (sources)
  path.join(__dirname, '..', '..', '..', 'build', 'Release'), // from dist/agent/memory
];

/** Opaque handle of a read-only shared mapping made by mapShared(). */
export interface MappingHandle {
  readonly __mapping: unique symbol;
}

interface RawAddon {
  UFFD_FEATURES_WP_ASYNC: number;
  userfaultfdCreate(features: number): number;
  pidfdOpen(pid: number): number;
  pidfdGetfd(pidfd: number, targetFd: number): number;
  uffdRegisterWp(uffd: number, startAddress: number, lengthBytes: number): number;
  uffdUnregister(uffd: number, startAddress: number, lengthBytes: number): void;
  uffdWriteProtect(uffd: number, startAddress: number, lengthBytes: number, protect: boolean): void;
  pagemapScanWritten(pagemapFd: number, startAddress: number, lengthBytes: number, pageSizeBytes: number, out: Uint32Array): number;
  pagemapSoftDirty(pagemapFd: number, startAddress: number, pageCount: number, pageSizeBytes: number, out: Uint32Array): number;
  xxh64(data: Buffer): bigint;
  hashPages(data: Buffer, pageSizeBytes: number, out: BigUint64Array, outOffset: number): number;
  hashFdPages(fd: number, offsetBytes: number, pageCount: number, pageSizeBytes: number, out: BigUint64Array, outOffset: number): number;
  mapShared(fd: number, lengthBytes: number, offsetBytes: number): MappingHandle;
  unmapShared(handle: MappingHandle): void;
  hashMappedPages(handle: MappingHandle, firstPage: number, pageCount: number, pageSizeBytes: number, out: BigUint64Array, outOffset: number): number;
  sumMappedWords(handle: MappingHandle, offsetBytes: number, lengthBytes: number): bigint;
  punchHole(fd: number, offsetBytes: number, lengthBytes: number): void;
  pageSize(): number;
  mallocRetain?(trimThresholdBytes: number, mmapThresholdBytes: number): boolean;
}

/** A system call made by the addon failed; `errno` is its name (EPERM, ENOSYS, EINVAL...). */
export class NativeCallError extends UmbraError {
  readonly errno: string;
  readonly call: string;
  constructor(call: string, errno: string, message: string, options?: { cause?: unknown }) {
    super(reasonForErrno(errno), `${call}: ${message}`, options);
    this.name = 'NativeCallError';
    this.errno = errno;
    this.call = call;
  }
}

function reasonForErrno(errno: string): ErrorReason {
  switch (errno) {
    case 'EPERM':
    case 'EACCES':
      return 'PERMISSION_DENIED';
    case 'ESRCH':
    case 'ENOENT':
    case 'EBADF':
      return 'NOT_FOUND';
    case 'ENOSPC':
    case 'ENOMEM':
    case 'E2BIG':
      return 'RESOURCE_EXHAUSTED';
    case 'ENOSYS':
    case 'ENOTTY':
    case 'EOPNOTSUPP':
      return 'UNIMPLEMENTED';
    case 'EINVAL':
      return 'INVALID_ARGUMENT';
    default:
      return 'INTERNAL';
  }
}

/** Absent addon (not built): every call fails with this, so callers can report why. */
export class NativeAddonMissingError extends UmbraError {
  constructor(detail: string, options?: { cause?: unknown }) {
    super('FAILED_PRECONDITION', `native addon umbra_memory.node unavailable (run npm ci / node-gyp rebuild): ${detail}`, options);
    this.name = 'NativeAddonMissingError';
  }
}

let loaded: RawAddon | undefined;
let loadError: unknown;

/** Directory of the built native artefacts (addon, preload library, test helper). */
export function nativeBuildDir(): string {
  return BUILD_DIR_CANDIDATES.find((d) => existsSync(path.join(d, 'umbra_memory.node'))) ?? BUILD_DIR_CANDIDATES[0];
}

/** Path of the preload library that creates a write-protect userfaultfd inside a VM process. */
export function uffdPreloadLibraryPath(): string {
  return path.join(nativeBuildDir(), 'umbra-uffd-preload.so');
}

/** Path of the shared-memory writer helper used by tests and benchmarks. */
export function shmWriterPath(): string {
  return path.join(nativeBuildDir(), 'umbra-shm-writer');
}

function raw(): RawAddon {
  if (loaded) return loaded;
  if (loadError) throw new NativeAddonMissingError(String((loadError as Error).message ?? loadError), { cause: loadError });
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    loaded = require(path.join(nativeBuildDir(), 'umbra_memory.node')) as RawAddon;
    return loaded;
  } catch (err) {
    loadError = err;
    throw new NativeAddonMissingError((err as Error).message, { cause: err });
  }
}

/** True when the addon loads; never throws. */
export function nativeAvailable(): boolean {
  try {
    raw();
    return true;
  } catch {
    return false;
  }
}

function call<T>(name: string, fn: (a: RawAddon) => T): T {
  const addon = raw();
  try {
    return fn(addon);
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (typeof e.code === 'string') throw new NativeCallError(name, e.code, e.message ?? String(err), { cause: err });
    throw err;
  }
}

/** The system calls and hashes of the addon, with errors typed. Addresses are plain numbers (< 2^53). */
export const native = {
  /** UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED. */
  get uffdAsyncWpFeatures(): number {
    return raw().UFFD_FEATURES_WP_ASYNC;
  },
  userfaultfdCreate: (features: number) => call('userfaultfd', (a) => a.userfaultfdCreate(features)),
  pidfdOpen: (pid: number) => call('pidfd_open', (a) => a.pidfdOpen(pid)),
  pidfdGetfd: (pidfd: number, targetFd: number) => call('pidfd_getfd', (a) => a.pidfdGetfd(pidfd, targetFd)),
  uffdRegisterWp: (uffd: number, start: number, len: number) => call('UFFDIO_REGISTER', (a) => a.uffdRegisterWp(uffd, start, len)),
  uffdUnregister: (uffd: number, start: number, len: number) => call('UFFDIO_UNREGISTER', (a) => a.uffdUnregister(uffd, start, len)),
  uffdWriteProtect: (uffd: number, start: number, len: number, protect: boolean) =>
    call('UFFDIO_WRITEPROTECT', (a) => a.uffdWriteProtect(uffd, start, len, protect)),
  /** Page indexes written since the previous scan (and re-protected), relative to `start`. */
  pagemapScanWritten: (pagemapFd: number, start: number, len: number, pageSizeBytes: number, out: Uint32Array) =>
    call('PAGEMAP_SCAN', (a) => a.pagemapScanWritten(pagemapFd, start, len, pageSizeBytes, out)),
  pagemapSoftDirty: (pagemapFd: number, start: number, pageCount: number, pageSizeBytes: number, out: Uint32Array) =>
    call('pagemap', (a) => a.pagemapSoftDirty(pagemapFd, start, pageCount, pageSizeBytes, out)),
  xxh64: (data: Buffer): bigint => raw().xxh64(data),
  hashPages: (data: Buffer, pageSizeBytes: number, out: BigUint64Array, outOffset = 0) =>
    call('hashPages', (a) => a.hashPages(data, pageSizeBytes, out, outOffset)),
  hashFdPages: (fd: number, offsetBytes: number, pageCount: number, pageSizeBytes: number, out: BigUint64Array, outOffset = 0) =>
    call('pread', (a) => a.hashFdPages(fd, offsetBytes, pageCount, pageSizeBytes, out, outOffset)),
  mapShared: (fd: number, lengthBytes: number, offsetBytes = 0) => call('mmap', (a) => a.mapShared(fd, lengthBytes, offsetBytes)),
  unmapShared: (handle: MappingHandle) => call('munmap', (a) => a.unmapShared(handle)),
  hashMappedPages: (h: MappingHandle, firstPage: number, pageCount: number, pageSizeBytes: number, out: BigUint64Array, outOffset = 0) =>
    call('hashMappedPages', (a) => a.hashMappedPages(h, firstPage, pageCount, pageSizeBytes, out, outOffset)),
  sumMappedWords: (h: MappingHandle, offsetBytes: number, lengthBytes: number) =>
    call('sumMappedWords', (a) => a.sumMappedWords(h, offsetBytes, lengthBytes)),
  punchHole: (fd: number, offsetBytes: number, lengthBytes: number) =>
    call('fallocate', (a) => a.punchHole(fd, offsetBytes, lengthBytes)),
  pageSize: (): number => raw().pageSize(),
  /** glibc malloc keeps freed memory for reuse (see the addon); false when not possible here. */
  mallocRetain: (trimThresholdBytes: number, mmapThresholdBytes: number): boolean => {
    const a = raw();
    return typeof a.mallocRetain === 'function' && a.mallocRetain(trimThresholdBytes, mmapThresholdBytes);
  },
};

// Finds the process that holds a guest's RAM from what an operator can name: a PID, a pid file,
// QEMU's QMP socket path (the process listening on it, through /proc/net/unix and /proc/PID/fd),
// or the RAM's backing path (the process mapping it shared, through /proc/PID/maps).
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { InvalidArgumentError, NotFoundError } from '../../shared/errors';
import { findRamMapping, parseProcMaps } from './proc-maps';

/** How the agent finds one VM's RAM; exactly one of pid / pidFile / qmpSocket / memoryPath picks the process. */
export interface GuestMemoryLocator {
  pid?: number;
  pidFile?: string;
  qmpSocket?: string;
  /** Substring of the RAM's backing path (memfd name or memory-backend-file path); also narrows the mapping search. */
  memoryPath?: string;
  memoryBytes: number;
}

export interface LocatedGuest {
  pid: number;
  /** Passed to locateGuestRam: the mapping's path must contain it (undefined = any shared mapping of the size). */
  pathContains?: string;
}

function pids(): number[] {
  return readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number);
}

/** Inode of the unix socket listening at `path` (/proc/net/unix: Num RefCount Protocol Flags Type St Inode Path). */
function unixSocketInode(path: string): number | undefined {
  const lines = readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1);
  for (const line of lines) {
    const f = line.trim().split(/\s+/);
    // St 01 = SS_UNCONNECTED: the listening socket, not accepted connections (which carry the path too).
    if (f.length >= 8 && f[7] === path && f[5] === '01') return Number(f[6]);
  }
  return undefined;
}

function processWithSocket(inode: number): number | undefined {
  const want = `socket:[${inode}]`;
  for (const pid of pids()) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone, or not ours to read
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === want) return pid;
      } catch {
        // fd closed while we looked
      }
    }
  }
  return undefined;
}

function processMapping(pathContains: string, sizeBytes: number): number | undefined {
  for (const pid of pids()) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/maps`, 'utf8');
    } catch {
      continue;
    }
    if (!text.includes(pathContains)) continue;
    if (findRamMapping(parseProcMaps(text), { sizeBytes, pathContains })) return pid;
  }
  return undefined;
}

/** Resolves a locator to a live process now (PIDs change when a VM restarts, so call it at each start). */
export function locateGuestProcess(loc: GuestMemoryLocator): LocatedGuest {
  const pathContains = loc.memoryPath;
  if (loc.pid !== undefined) return { pid: loc.pid, pathContains };
  if (loc.pidFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(loc.pidFile, 'utf8').trim();
    } catch (err) {
      throw new NotFoundError('pid file', loc.pidFile, { cause: err });
    }
    const pid = Number(text);
    if (!Number.isSafeInteger(pid) || pid <= 0) throw new InvalidArgumentError('pid_file', `${loc.pidFile} holds '${text.slice(0, 20)}', not a PID`);
    return { pid, pathContains };
  }
  if (loc.qmpSocket !== undefined) {
    const inode = unixSocketInode(loc.qmpSocket);
    const pid = inode === undefined ? undefined : processWithSocket(inode);
    if (pid === undefined) throw new NotFoundError('process listening on QMP socket', loc.qmpSocket);
    return { pid, pathContains };
  }
  if (pathContains !== undefined) {
    const pid = processMapping(pathContains, loc.memoryBytes);
    if (pid === undefined) throw new NotFoundError('process mapping guest RAM', `${pathContains} (${loc.memoryBytes} bytes)`);
    return { pid, pathContains };
  }
  throw new InvalidArgumentError('locator', 'needs one of pid, pid_file, qmp_socket or memory_path');
}

/** Short text for logs and status. */
export function describeLocator(loc: GuestMemoryLocator): string {
  const how = loc.pid !== undefined ? `pid ${loc.pid}` : loc.pidFile ? `pid file ${loc.pidFile}` : loc.qmpSocket ? `qmp ${loc.qmpSocket}` : `memory ${loc.memoryPath}`;
  return `${how}, ${loc.memoryBytes} bytes${loc.memoryPath && loc.pid === undefined && !loc.pidFile && !loc.qmpSocket ? '' : loc.memoryPath ? `, path ~ ${loc.memoryPath}` : ''}`;
}

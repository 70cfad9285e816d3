// Finds QEMU processes already running on this host that have a QMP socket, from /proc, and
// reads each one's VM definition back from its command line.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { parseQemuCmdline, type ParsedQemuCmdline } from './qemu-cmdline-parser';

const QEMU_BINARY_RE = /^qemu-(system-[a-z0-9_]+|kvm)$/;

export interface DiscoveredQemu extends ParsedQemuCmdline {
  pid: number;
  argv: string[];
  qmpSocketPath: string;
}

/** /proc/PID/cmdline is NUL-separated with a trailing NUL. Pure. */
export function splitProcCmdline(raw: Buffer | string): string[] {
  const text = typeof raw === 'string' ? raw : raw.toString('utf8');
  const parts = text.split('\0');
  if (parts.at(-1) === '') parts.pop();
  return parts;
}

export function isQemuArgv(argv: string[]): boolean {
  return argv.length > 0 && QEMU_BINARY_RE.test(path.basename(argv[0]));
}

/** Every running QEMU with a QMP unix socket; processes that vanish mid-scan are skipped. */
export async function discoverQemuProcesses(procRoot = '/proc'): Promise<DiscoveredQemu[]> {
  const out: DiscoveredQemu[] = [];
  for (const entry of await fs.readdir(procRoot)) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = splitProcCmdline(await fs.readFile(path.join(procRoot, entry, 'cmdline')));
    } catch {
      continue;
    }
    if (!isQemuArgv(argv)) continue;
    const parsed = parseQemuCmdline(argv);
    if (!parsed.qmpSocketPath) continue;
    out.push({ ...parsed, pid: Number(entry), argv, qmpSocketPath: parsed.qmpSocketPath });
  }
  return out.sort((a, b) => a.pid - b.pid);
}

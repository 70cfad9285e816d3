// Checks which host facilities the agent can use (libpcap, rtnetlink, dirty-page tracking,
// QEMU) by trying them, so health reports what works rather than what is installed.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
const PROBE_TIMEOUT_MS = 3000;

export interface CapabilityStatus {
  name: string;
  available: boolean;
  detail: string;
}

async function probeLibpcap(): Promise<CapabilityStatus> {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const cap = require('cap') as { Cap: { deviceList(): Array<{ name: string }> } };
    const devices = cap.Cap.deviceList();
    return { name: 'libpcap', available: true, detail: `${devices.length} capture devices` };
  } catch (err) {
    return { name: 'libpcap', available: false, detail: (err as Error).message.split('\n')[0] };
  }
}

async function probeNetlink(): Promise<CapabilityStatus> {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { createRtNetlink } = require('netlink') as typeof import('netlink');
    const nl = createRtNetlink({ recvBufferSize: 0, sendBufferSize: 0 } as never);
    try {
      const links = await nl.getLinks(undefined, undefined, { timeout: PROBE_TIMEOUT_MS });
      return { name: 'netlink', available: true, detail: `rtnetlink ok, ${links.length} links` };
    } finally {
      nl.socket.close();
    }
  } catch (err) {
    return { name: 'netlink', available: false, detail: (err as Error).message };
  }
}

function kernelAtLeast(major: number, minor: number): boolean {
  const m = /^(\d+)\.(\d+)/.exec(os.release());
  if (!m) return false;
  return Number(m[1]) > major || (Number(m[1]) === major && Number(m[2]) >= minor);
}

function kernelConfigHas(option: string): boolean | undefined {
  for (const file of [`/boot/config-${os.release()}`]) {
    try {
      return new RegExp(`^${option}=y`, 'm').test(readFileSync(file, 'utf8'));
    } catch {
      // not readable: unknown
    }
  }
  return undefined;
}

/** The best dirty-page tracking mechanism this kernel offers, in the order DESIGN.md gives. */
async function probeDirtyTracking(): Promise<CapabilityStatus> {
  if (kernelAtLeast(6, 7)) {
    return { name: 'dirty-tracking', available: true, detail: `uffd-wp (userfaultfd async write-protect + PAGEMAP_SCAN, kernel ${os.release()})` };
  }
  const softDirty = kernelConfigHas('CONFIG_MEM_SOFT_DIRTY');
  if (softDirty) return { name: 'dirty-tracking', available: true, detail: 'soft-dirty (kernel lacks PAGEMAP_SCAN)' };
  return { name: 'dirty-tracking', available: true, detail: 'hash (no uffd-wp or soft-dirty on this kernel; flush time grows with VM size)' };
}

const QEMU_CANDIDATES = ['/usr/bin/qemu-system-x86_64', '/usr/local/bin/qemu-system-x86_64', '/usr/libexec/qemu-kvm'];
let qemuCache: { path: string; mtimeMs: number; status: CapabilityStatus } | undefined;

/** Runs `qemu --version` only when the binary changed since the last probe: an idle agent spawns nothing. */
async function probeQemu(): Promise<CapabilityStatus> {
  const found = QEMU_CANDIDATES.map((p) => ({ p, st: statSync(p, { throwIfNoEntry: false }) })).find((x) => x.st);
  if (!found) return { name: 'qemu', available: false, detail: 'qemu-system-x86_64 not installed' };
  if (qemuCache && qemuCache.path === found.p && qemuCache.mtimeMs === found.st!.mtimeMs) return qemuCache.status;
  const status = await runQemuVersion(found.p);
  qemuCache = { path: found.p, mtimeMs: found.st!.mtimeMs, status };
  return status;
}

async function runQemuVersion(binary: string): Promise<CapabilityStatus> {
  try {
    const { stdout } = await execFileP(binary, ['--version'], { timeout: PROBE_TIMEOUT_MS });
    const kvm = existsSync('/dev/kvm');
    return { name: 'qemu', available: true, detail: `${stdout.split('\n')[0].trim()}${kvm ? ', /dev/kvm present' : ', no /dev/kvm (TCG only)'}` };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { name: 'qemu', available: false, detail: code === 'ENOENT' ? 'qemu-system-x86_64 not installed' : (err as Error).message };
  }
}

export async function probeCapabilities(): Promise<CapabilityStatus[]> {
  return Promise.all([probeLibpcap(), probeNetlink(), probeDirtyTracking(), probeQemu()]);
}

// Builds (once, cached by a hash of its inputs) the test guest: the installed Debian kernel plus a
// small busybox initramfs holding the virtio-net modules, a DHCP client script and our own static
// workload program (test/helpers/guest/umbra-guest.c). No network downloads: everything comes
// from packages already on the machine (linux-image-amd64, busybox-static, cpio, gcc, libc6-dev).
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promises as fs, existsSync, readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export const DEFAULT_GUEST_CACHE_DIR = '/var/tmp/umbra-guest';
/** Modules the guest needs for its NIC; their dependencies are added from modules.dep. */
export const GUEST_MODULES = ['virtio_pci', 'virtio_net'];
const BUSYBOX_PATH = '/bin/busybox';
/** Kept in the source tree next to this file; compiled output lives in dist/ without them. */
const GUEST_SOURCES = ['umbra-guest.c', 'init.sh', 'udhcpc.script'];

export interface GuestImage {
  /**
   * What to give QEMU's -kernel: the uncompressed ELF vmlinux when the kernel supports PVH entry
   * (QEMU then skips the in-guest decompression, seconds under TCG), else /boot/vmlinuz-<release>.
   */
  kernelPath: string;
  /** The installed compressed kernel it came from. */
  vmlinuzPath: string;
  initrdPath: string;
  /** Kernel release the modules were taken from, e.g. 6.1.0-56-amd64. */
  kernelRelease: string;
}

export interface BuildGuestImageOptions {
  /** Cache root; the image goes to <outDir>/<hash of inputs>/. */
  outDir?: string;
  /** Kernel release under /lib/modules with a matching /boot/vmlinuz-<release>; newest by default. */
  kernelRelease?: string;
}

/**
 * Kernel command line for the guest. The workload settings become umbra.* parameters read by
 * umbra-guest: port (UDP echo/stat, default 7007), fill_pct (fill that share of RAM with
 * non-zero data at start), memwrite_mb and memwrite_rate (MB/s; 0 = unthrottled).
 */
export function guestKernelAppend(workload: { port?: number; fillPct?: number; memwriteMb?: number; memwriteRateMbps?: number } = {}): string {
  const parts = ['console=ttyS0', 'quiet', 'panic=-1', 'no_timer_check', 'tsc=reliable', 'mitigations=off', 'pci=nomsi'];
  if (workload.port !== undefined) parts.push(`umbra.port=${workload.port}`);
  if (workload.fillPct !== undefined) parts.push(`umbra.fill_pct=${workload.fillPct}`);
  if (workload.memwriteMb !== undefined) parts.push(`umbra.memwrite_mb=${workload.memwriteMb}`);
  if (workload.memwriteRateMbps !== undefined) parts.push(`umbra.memwrite_rate=${workload.memwriteRateMbps}`);
  return parts.join(' ');
}

/** Dependency-first load order for `wanted` modules, skipping built-ins. Pure. */
export function resolveModuleOrder(wanted: string[], modulesDep: string, modulesBuiltin: string): string[] {
  const deps = new Map<string, string[]>();
  const byName = new Map<string, string>();
  for (const line of modulesDep.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const mod = line.slice(0, colon).trim();
    deps.set(mod, line.slice(colon + 1).trim().split(/\s+/).filter(Boolean));
    byName.set(moduleName(mod), mod);
  }
  const builtin = new Set(modulesBuiltin.split('\n').map((l) => moduleName(l.trim())).filter(Boolean));
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (mod: string): void => {
    if (seen.has(mod)) return;
    seen.add(mod);
    // modules.dep lists the deepest dependency last, so visiting each first loads it first.
    for (const d of deps.get(mod) ?? []) visit(d);
    order.push(mod);
  };
  for (const name of wanted) {
    const norm = name.replace(/-/g, '_');
    if (builtin.has(norm)) continue;
    const mod = byName.get(norm);
    if (!mod) throw new Error(`module ${name} is neither built in nor in modules.dep`);
    visit(mod);
  }
  return order;
}

function moduleName(relPath: string): string {
  return path.basename(relPath).replace(/\.ko(\.(xz|zst|gz))?$/, '').replace(/-/g, '_');
}

function newestKernelRelease(): string {
  const releases = readdirSync('/lib/modules').filter((r) => existsSync(`/boot/vmlinuz-${r}`));
  if (releases.length === 0) throw new Error('no kernel with both /boot/vmlinuz-<release> and /lib/modules/<release> (install linux-image-amd64)');
  return releases.sort((a, b) => a.localeCompare(b, undefined, { numeric: true })).at(-1)!;
}

/** The guest/ folder in the source tree (this file runs from dist/test/helpers). */
function guestSourceDir(): string {
  const candidates = [path.join(__dirname, 'guest'), path.resolve(__dirname, '../../../test/helpers/guest')];
  const dir = candidates.find((d) => existsSync(path.join(d, 'umbra-guest.c')));
  if (!dir) throw new Error(`guest sources not found in ${candidates.join(' or ')}`);
  return dir;
}

const inFlight = new Map<string, Promise<GuestImage>>();

/** Returns the cached guest image for these inputs, building it first if needed. */
export async function buildGuestImage(options: BuildGuestImageOptions = {}): Promise<GuestImage> {
  const release = options.kernelRelease ?? newestKernelRelease();
  const vmlinuzPath = `/boot/vmlinuz-${release}`;
  const modDir = `/lib/modules/${release}`;
  const order = resolveModuleOrder(GUEST_MODULES, readFileSync(`${modDir}/modules.dep`, 'utf8'), readFileSync(`${modDir}/modules.builtin`, 'utf8'));
  const srcDir = guestSourceDir();
  const hash = createHash('sha256');
  hash.update(release);
  for (const f of GUEST_SOURCES) hash.update(readFileSync(path.join(srcDir, f)));
  for (const m of order) hash.update(m);
  const bb = await fs.stat(BUSYBOX_PATH);
  hash.update(`${bb.size}:${bb.mtimeMs}`);
  const kst = await fs.stat(vmlinuzPath);
  hash.update(`${kst.size}:${kst.mtimeMs}`);
  const key = hash.digest('hex').slice(0, 16);
  const imageDir = path.join(options.outDir ?? DEFAULT_GUEST_CACHE_DIR, key);
  const initrdPath = path.join(imageDir, 'initrd.gz');
  const vmlinuxPath = path.join(imageDir, 'vmlinux');
  const result = (): GuestImage => ({ kernelPath: existsSync(vmlinuxPath) ? vmlinuxPath : vmlinuzPath, vmlinuzPath, initrdPath, kernelRelease: release });
  // initrd.gz is renamed into place last, so its presence means the whole image is complete.
  if (existsSync(initrdPath)) return result();
  let pending = inFlight.get(initrdPath);
  if (!pending) {
    pending = buildInto(imageDir, srcDir, modDir, order).then(async (initrdPart) => {
      await extractPvhKernel(vmlinuzPath, `/boot/config-${release}`, vmlinuxPath);
      await fs.rename(initrdPart, initrdPath);
      return result();
    });
    inFlight.set(initrdPath, pending);
    pending.finally(() => inFlight.delete(initrdPath)).catch(() => undefined);
  }
  return pending;
}

/** Builds the initramfs; returns its path under a per-process name, for the caller to rename. */
async function buildInto(imageDir: string, srcDir: string, modDir: string, order: string[]): Promise<string> {
  await fs.mkdir(imageDir, { recursive: true });
  // A private staging dir per build; the finished file is renamed into place, so concurrent
  // builders (several test processes) never see a half-written initrd.
  const stage = await fs.mkdtemp(path.join(imageDir, 'stage-'));
  try {
    const root = path.join(stage, 'root');
    for (const d of ['bin', 'dev', 'etc', 'proc', 'sys', 'tmp', 'lib/modules']) await fs.mkdir(path.join(root, d), { recursive: true });
    await fs.copyFile(BUSYBOX_PATH, path.join(root, 'bin/busybox'));
    await execFileP('gcc', ['-static', '-O2', '-s', '-o', path.join(root, 'bin/umbra-guest'), path.join(srcDir, 'umbra-guest.c')]);
    await fs.copyFile(path.join(srcDir, 'init.sh'), path.join(root, 'init'));
    await fs.copyFile(path.join(srcDir, 'udhcpc.script'), path.join(root, 'etc/udhcpc.script'));
    await fs.chmod(path.join(root, 'init'), 0o755);
    await fs.chmod(path.join(root, 'etc/udhcpc.script'), 0o755);
    const loadOrder: string[] = [];
    for (const rel of order) {
      const base = path.basename(rel).replace(/\.(xz|zst|gz)$/, '');
      const dst = path.join(root, 'lib/modules', base);
      if (rel.endsWith('.ko')) await fs.copyFile(path.join(modDir, rel), dst);
      else await decompressModule(path.join(modDir, rel), dst);
      loadOrder.push(base);
    }
    await fs.writeFile(path.join(root, 'etc/modules-order'), loadOrder.join('\n') + '\n');
    const cpioOut = path.join(stage, 'initrd.gz');
    // newc format, owned by root whoever builds it; gzip is what the Debian kernel always unpacks.
    await execFileP('sh', ['-c', `cd "${root}" && find . | sort | cpio -o -H newc -R 0:0 --quiet | gzip -6 > "${cpioOut}"`]);
    const part = path.join(imageDir, `initrd.gz.${process.pid}.part`);
    await fs.rename(cpioOut, part);
    return part;
  } finally {
    await fs.rm(stage, { recursive: true, force: true });
  }
}

/** Kernel payload formats Debian uses, by CONFIG_KERNEL_* name: magic bytes and decompressor. */
const PAYLOADS: Record<string, { magic: Buffer; cmd: string }> = {
  XZ: { magic: Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), cmd: 'xz -dc --single-stream' },
  ZSTD: { magic: Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), cmd: 'zstd -dc' },
  GZIP: { magic: Buffer.from([0x1f, 0x8b, 0x08]), cmd: 'gzip -dc' },
};

/**
 * Writes the ELF vmlinux inside a bzImage to `out` when the kernel has PVH entry (CONFIG_PVH),
 * which QEMU boots directly. Leaves nothing behind (and the caller keeps the bzImage) otherwise.
 */
async function extractPvhKernel(vmlinuz: string, configPath: string, out: string): Promise<void> {
  const config = existsSync(configPath) ? readFileSync(configPath, 'utf8') : '';
  if (!/^CONFIG_PVH=y$/m.test(config)) return;
  const kind = Object.keys(PAYLOADS).find((k) => new RegExp(`^CONFIG_KERNEL_${k}=y$`, 'm').test(config));
  if (!kind) return;
  const image = readFileSync(vmlinuz);
  const off = image.indexOf(PAYLOADS[kind].magic);
  if (off < 0) return;
  const tmp = `${out}.${process.pid}.part`;
  const payload = `${out}.${process.pid}.payload`;
  await fs.writeFile(payload, image.subarray(off));
  try {
    // Decompressors complain about the bytes after the payload; the output is complete anyway.
    await execFileP('sh', ['-c', `${PAYLOADS[kind].cmd} "${payload}" > "${tmp}" 2>/dev/null || true`]);
    const head = Buffer.alloc(4);
    const fh = await fs.open(tmp, 'r');
    await fh.read(head, 0, 4, 0);
    await fh.close();
    if (head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) await fs.rename(tmp, out);
  } finally {
    await fs.rm(payload, { force: true });
    await fs.rm(tmp, { force: true });
  }
}

async function decompressModule(src: string, dst: string): Promise<void> {
  const tool = src.endsWith('.xz') ? 'xz' : src.endsWith('.zst') ? 'zstd' : 'gzip';
  await execFileP('sh', ['-c', `${tool} -dc "${src}" > "${dst}"`]);
}

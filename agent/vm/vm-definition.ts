// A VM's definition (what a shadow is launched from) with validation, and the QEMU command line
// it maps to, including the shadow variant (RAM on a shared file, `-incoming defer`). Pure.
import { InvalidArgumentError } from '../../shared/errors';

/** Both sides of a migration must name the RAM block the same; x-ignore-shared matches on it. */
export const GUEST_RAM_BACKEND_ID = 'umbra-ram';
export const QMP_CHARDEV_ID = 'umbra-qmp';
export const SERIAL_CHARDEV_ID = 'umbra-serial';
export const DEFAULT_MACHINE = 'pc';
export const DEFAULT_CPU_MODEL = 'qemu64';
export const MIN_MEMORY_BYTES = 16 * 1024 * 1024;
export const MAX_VCPUS = 256;
const MIB = 1024 * 1024;

export type MemoryBackend = { kind: 'memfd' } | { kind: 'file'; path: string };

export type VmBoot =
  | { kind: 'kernel'; kernelPath: string; initrdPath?: string; append?: string }
  | { kind: 'disk'; diskPath: string; format: 'raw' | 'qcow2' };

export interface VmNic {
  /** Unicast MAC, aa:bb:cc:dd:ee:ff; the guest's DHCP identity, identical on every host. */
  mac: string;
  /** Host tap device the NIC is attached to; per host (the shadow has its own). */
  tapName: string;
  /** QEMU netdev id; the device id is `<netdevId>-dev`. */
  netdevId: string;
  model: 'virtio-net-pci' | 'e1000';
}

export interface VmDefinition {
  /** Stable VM id ([A-Za-z0-9_.-], 1-64 chars); also QEMU's -name. */
  id: string;
  /** QEMU machine type, e.g. pc, q35, pc-i440fx-7.2 (pin a versioned one across QEMU versions). */
  machine: string;
  cpuModel: string;
  vcpus: number;
  /** Guest RAM in bytes; a whole number of MiB. */
  memorySizeBytes: number;
  memoryBackend: MemoryBackend;
  boot: VmBoot;
  nics: VmNic[];
  qmpSocketPath: string;
  serialLogPath: string;
  /** 'tcg' on machines without usable KVM (the test machines). */
  accel: 'tcg' | 'kvm';
}

export interface QemuArgsOptions {
  /** 'defer' adds `-incoming defer`: the process waits for migrate-incoming. */
  incoming?: 'defer';
  /** Guest RAM on this file (memory-backend-file, share=on) instead of the definition's backend. */
  ramFile?: string;
  /**
   * Map every page of guest RAM when QEMU starts (prealloc=on: MADV_POPULATE_WRITE, which leaves
   * the contents alone), so the guest does not take a page fault per page it first touches after
   * a switchover. For a shadow on its image; the file's holes get allocated.
   */
  prefaultRam?: boolean;
  /** Start with the vCPUs stopped (-S); after an incoming migration the guest then waits for `cont`. */
  startPaused?: boolean;
  /** Overrides the definition's tap names (a shadow host has its own taps), by netdev id. */
  tapNames?: Record<string, string>;
  /** Overrides the QMP socket / serial log paths (a shadow on the same host needs its own). */
  qmpSocketPath?: string;
  serialLogPath?: string;
}

const ID_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const QEMU_TOKEN_RE = /^[A-Za-z0-9_.+-]{1,64}$/;
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const IFNAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(raw: Record<string, unknown>, key: string, field: string, required = true): string | undefined {
  const v = raw[key];
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'string' || v.length === 0) throw new InvalidArgumentError(field, 'must be a non-empty string');
  return v;
}

/** QEMU options are comma-separated; a comma (or newline) in a path would inject options. */
function path(raw: Record<string, unknown>, key: string, field: string): string {
  const v = str(raw, key, field)!;
  if (!v.startsWith('/')) throw new InvalidArgumentError(field, `must be an absolute path, got '${v}'`);
  if (/[,\n\0]/.test(v)) throw new InvalidArgumentError(field, 'must not contain commas, newlines or NUL');
  return v;
}

/** Parses and checks a definition from config or an API; throws InvalidArgumentError naming the field. */
export function parseVmDefinition(raw: unknown): VmDefinition {
  if (!isObject(raw)) throw new InvalidArgumentError('vm', 'must be an object');
  const id = str(raw, 'id', 'vm.id')!;
  if (!ID_RE.test(id)) throw new InvalidArgumentError('vm.id', `'${id}' must be 1-64 chars of A-Z a-z 0-9 _ . -`);
  const machine = str(raw, 'machine', 'vm.machine', false) ?? DEFAULT_MACHINE;
  if (!QEMU_TOKEN_RE.test(machine)) throw new InvalidArgumentError('vm.machine', `'${machine}' is not a machine type name`);
  const cpuModel = str(raw, 'cpuModel', 'vm.cpuModel', false) ?? DEFAULT_CPU_MODEL;
  if (!QEMU_TOKEN_RE.test(cpuModel)) throw new InvalidArgumentError('vm.cpuModel', `'${cpuModel}' is not a CPU model name`);
  const vcpus = raw.vcpus ?? 1;
  if (typeof vcpus !== 'number' || !Number.isInteger(vcpus) || vcpus < 1 || vcpus > MAX_VCPUS) {
    throw new InvalidArgumentError('vm.vcpus', `must be an integer from 1 to ${MAX_VCPUS}`);
  }
  const mem = raw.memorySizeBytes;
  if (typeof mem !== 'number' || !Number.isSafeInteger(mem) || mem < MIN_MEMORY_BYTES || mem % MIB !== 0) {
    throw new InvalidArgumentError('vm.memorySizeBytes', `must be a whole number of MiB, at least ${MIN_MEMORY_BYTES / MIB} MiB`);
  }
  const memoryBackend = parseBackend(raw.memoryBackend ?? { kind: 'memfd' });
  const boot = parseBoot(raw.boot);
  if (!Array.isArray(raw.nics)) throw new InvalidArgumentError('vm.nics', 'must be a list (may be empty)');
  const nics = raw.nics.map((n, i) => parseNic(n, `vm.nics[${i}]`, i));
  const seen = new Set<string>();
  nics.forEach((n, i) => {
    if (seen.has(n.netdevId)) throw new InvalidArgumentError(`vm.nics[${i}].netdevId`, `'${n.netdevId}' is used twice`);
    seen.add(n.netdevId);
  });
  const accel = raw.accel ?? 'tcg';
  if (accel !== 'tcg' && accel !== 'kvm') throw new InvalidArgumentError('vm.accel', "must be 'tcg' or 'kvm'");
  return {
    id,
    machine,
    cpuModel,
    vcpus,
    memorySizeBytes: mem,
    memoryBackend,
    boot,
    nics,
    qmpSocketPath: path(raw, 'qmpSocketPath', 'vm.qmpSocketPath'),
    serialLogPath: path(raw, 'serialLogPath', 'vm.serialLogPath'),
    accel,
  };
}

function parseBackend(raw: unknown): MemoryBackend {
  if (!isObject(raw)) throw new InvalidArgumentError('vm.memoryBackend', 'must be an object');
  if (raw.kind === 'memfd') return { kind: 'memfd' };
  if (raw.kind === 'file') return { kind: 'file', path: path(raw, 'path', 'vm.memoryBackend.path') };
  throw new InvalidArgumentError('vm.memoryBackend.kind', "must be 'memfd' or 'file' (guest RAM must be shareable)");
}

function parseBoot(raw: unknown): VmBoot {
  if (!isObject(raw)) throw new InvalidArgumentError('vm.boot', 'must be an object');
  if (raw.kind === 'kernel') {
    const append = str(raw, 'append', 'vm.boot.append', false);
    if (append !== undefined && /[\n\0]/.test(append)) throw new InvalidArgumentError('vm.boot.append', 'must be one line');
    return {
      kind: 'kernel',
      kernelPath: path(raw, 'kernelPath', 'vm.boot.kernelPath'),
      initrdPath: raw.initrdPath === undefined ? undefined : path(raw, 'initrdPath', 'vm.boot.initrdPath'),
      append,
    };
  }
  if (raw.kind === 'disk') {
    const format = raw.format ?? 'raw';
    if (format !== 'raw' && format !== 'qcow2') throw new InvalidArgumentError('vm.boot.format', "must be 'raw' or 'qcow2'");
    return { kind: 'disk', diskPath: path(raw, 'diskPath', 'vm.boot.diskPath'), format };
  }
  throw new InvalidArgumentError('vm.boot.kind', "must be 'kernel' or 'disk'");
}

function parseNic(raw: unknown, field: string, index: number): VmNic {
  if (!isObject(raw)) throw new InvalidArgumentError(field, 'must be an object');
  const mac = str(raw, 'mac', `${field}.mac`)!.toLowerCase();
  if (!MAC_RE.test(mac)) throw new InvalidArgumentError(`${field}.mac`, `'${mac}' is not a MAC address`);
  if (parseInt(mac.slice(0, 2), 16) & 1) throw new InvalidArgumentError(`${field}.mac`, `'${mac}' is a multicast address`);
  const tapName = str(raw, 'tapName', `${field}.tapName`)!;
  if (!IFNAME_RE.test(tapName)) throw new InvalidArgumentError(`${field}.tapName`, `'${tapName}' is not an interface name (max 15 chars)`);
  const netdevId = str(raw, 'netdevId', `${field}.netdevId`, false) ?? `net${index}`;
  if (!ID_RE.test(netdevId)) throw new InvalidArgumentError(`${field}.netdevId`, `'${netdevId}' is not a valid id`);
  const model = raw.model ?? 'virtio-net-pci';
  if (model !== 'virtio-net-pci' && model !== 'e1000') throw new InvalidArgumentError(`${field}.model`, "must be 'virtio-net-pci' or 'e1000'");
  return { mac, tapName, netdevId, model };
}

/**
 * QEMU's arguments (without the binary) for `def`. The device set depends only on the definition,
 * so a source and its shadow built from the same definition have the same migration layout.
 */
export function toQemuArgs(def: VmDefinition, options: QemuArgsOptions = {}): string[] {
  if (options.ramFile !== undefined && (!options.ramFile.startsWith('/') || /[,\n\0]/.test(options.ramFile))) {
    throw new InvalidArgumentError('ramFile', 'must be an absolute path without commas');
  }
  const memMiB = def.memorySizeBytes / MIB;
  const ram = options.ramFile !== undefined ? { kind: 'file' as const, path: options.ramFile } : def.memoryBackend;
  const backend =
    ram.kind === 'memfd'
      ? `memory-backend-memfd,id=${GUEST_RAM_BACKEND_ID},size=${memMiB}M,share=on`
      : `memory-backend-file,id=${GUEST_RAM_BACKEND_ID},size=${memMiB}M,mem-path=${ram.path},share=on${options.prefaultRam ? ',prealloc=on' : ''}`;
  const qmp = options.qmpSocketPath ?? def.qmpSocketPath;
  const serial = options.serialLogPath ?? def.serialLogPath;
  const args = [
    '-name', def.id,
    '-nodefaults', '-no-user-config', '-display', 'none',
    '-accel', def.accel,
    '-machine', `${def.machine},memory-backend=${GUEST_RAM_BACKEND_ID}`,
    '-cpu', def.cpuModel,
    '-smp', String(def.vcpus),
    '-m', `${memMiB}M`,
    '-object', backend,
    '-chardev', `socket,id=${QMP_CHARDEV_ID},path=${qmp},server=on,wait=off`,
    '-mon', `chardev=${QMP_CHARDEV_ID},mode=control`,
    '-chardev', `file,id=${SERIAL_CHARDEV_ID},path=${serial}`,
    '-serial', `chardev:${SERIAL_CHARDEV_ID}`,
    // The guest's run state does not travel with its device state: the destination runs the
    // guest when it was told to (a cont while it waits, see VmAgentHost's armed resume), even
    // though the source was paused (by its switch-out) before the migration began.
    '-global', 'migration.store-global-state=off',
  ];
  if (def.boot.kind === 'kernel') {
    args.push('-kernel', def.boot.kernelPath);
    if (def.boot.initrdPath) args.push('-initrd', def.boot.initrdPath);
    if (def.boot.append !== undefined) args.push('-append', def.boot.append);
  } else {
    args.push('-drive', `file=${def.boot.diskPath},if=virtio,format=${def.boot.format}`);
  }
  for (const nic of def.nics) {
    const tap = options.tapNames?.[nic.netdevId] ?? nic.tapName;
    if (!IFNAME_RE.test(tap)) throw new InvalidArgumentError(`tapNames.${nic.netdevId}`, `'${tap}' is not an interface name`);
    args.push('-netdev', `tap,id=${nic.netdevId},ifname=${tap},script=no,downscript=no`);
    // No option ROM: iPXE is not used for kernel boot and would be one more RAM block to migrate.
    args.push('-device', `${nic.model},netdev=${nic.netdevId},mac=${nic.mac},id=${nic.netdevId}-dev,romfile=`);
  }
  if (options.startPaused) args.push('-S');
  if (options.incoming === 'defer') args.push('-incoming', 'defer');
  return args;
}

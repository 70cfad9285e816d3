// Reads a QEMU command line (as found in /proc/PID/cmdline) back into a VM definition: the QMP
// socket, and every field a shadow needs. Handles the forms toQemuArgs writes plus the common
// hand-written ones (-qmp unix:..., -serial file:..., -m 1G, -smp cpus=2). Pure.
import { errorMessage } from '../../shared/errors';
import { parseVmDefinition, type VmDefinition } from './vm-definition';

export interface ParsedQemuCmdline {
  name?: string;
  qmpSocketPath?: string;
  /** The full definition, when every required part was found and valid. */
  definition?: VmDefinition;
  /** Why `definition` is missing (or what was ignored). */
  problems: string[];
}

/** QEMU's option syntax: `type,key=value,...`, where ",," is a literal comma. */
export function splitQemuOption(text: string): { head: string; props: Map<string, string> } {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < text.length; i++) {
    if (text[i] === ',') {
      if (text[i + 1] === ',') {
        cur += ',';
        i++;
        continue;
      }
      parts.push(cur);
      cur = '';
    } else {
      cur += text[i];
    }
  }
  parts.push(cur);
  const props = new Map<string, string>();
  let head = '';
  parts.forEach((p, i) => {
    const eq = p.indexOf('=');
    if (eq < 0) {
      if (i === 0) head = p;
      else props.set(p, 'on');
    } else {
      props.set(p.slice(0, eq), p.slice(eq + 1));
    }
  });
  return { head, props };
}

/** QEMU sizes: plain numbers are MiB for -m; suffixes K, M, G, T. */
export function parseQemuSize(text: string, defaultUnit: 'B' | 'M'): number | undefined {
  const m = /^(\d+(?:\.\d+)?)([KMGTkmgt]?)[Bb]?$/.exec(text.trim());
  if (!m) return undefined;
  const unit = m[2] ? m[2].toUpperCase() : defaultUnit;
  const mult: Record<string, number> = { B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };
  return Math.round(Number(m[1]) * mult[unit]);
}

export function parseQemuCmdline(argv: string[]): ParsedQemuCmdline {
  const problems: string[] = [];
  const opts: Array<[string, string]> = [];
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('-')) continue;
    const flag = a.replace(/^--/, '-');
    const next = argv[i + 1];
    if (next !== undefined && !next.startsWith('-')) {
      opts.push([flag, next]);
      i++;
    } else if (flag === '-append' && next !== undefined) {
      opts.push([flag, next]); // an -append line may itself start with '-'
      i++;
    } else {
      opts.push([flag, '']);
    }
  }
  const all = (flag: string): string[] => opts.filter(([f]) => f === flag).map(([, v]) => v);
  const last = (flag: string): string | undefined => all(flag).at(-1);

  let name: string | undefined;
  const nameOpt = last('-name');
  if (nameOpt !== undefined) {
    const { head, props } = splitQemuOption(nameOpt);
    name = props.get('guest') ?? (head || undefined);
  }

  const chardevs = new Map<string, Map<string, string> & { kind?: string }>();
  for (const v of all('-chardev')) {
    const { head, props } = splitQemuOption(v);
    const id = props.get('id');
    if (id) chardevs.set(id, Object.assign(props, { kind: head }));
  }
  let qmpSocketPath: string | undefined;
  for (const v of all('-mon')) {
    const { props } = splitQemuOption(v);
    const dev = chardevs.get(props.get('chardev') ?? '');
    if (props.get('mode') === 'control' && dev?.kind === 'socket' && dev.get('path')) qmpSocketPath = dev.get('path');
  }
  for (const v of all('-qmp')) {
    const { head } = splitQemuOption(v);
    if (head.startsWith('unix:')) qmpSocketPath = head.slice(5);
  }

  let serialLogPath: string | undefined;
  const serial = last('-serial');
  if (serial?.startsWith('file:')) serialLogPath = serial.slice(5);
  else if (serial?.startsWith('chardev:')) {
    const dev = chardevs.get(serial.slice(8));
    if (dev?.kind === 'file') serialLogPath = dev.get('path');
  }

  const machineOpt = splitQemuOption(last('-machine') ?? last('-M') ?? 'pc');
  const accelOpt = last('-accel');
  const accel = accelOpt !== undefined ? splitQemuOption(accelOpt).head : machineOpt.props.get('accel') ?? (argv.includes('-enable-kvm') ? 'kvm' : 'tcg');

  const smp = last('-smp');
  let vcpus = 1;
  if (smp !== undefined) {
    const { head, props } = splitQemuOption(smp);
    vcpus = Number(props.get('cpus') ?? head);
  }

  let memorySizeBytes: number | undefined;
  const mOpt = last('-m');
  if (mOpt !== undefined) {
    const { head, props } = splitQemuOption(mOpt);
    memorySizeBytes = parseQemuSize(props.get('size') ?? head, 'M');
  }
  let memoryBackend: Record<string, unknown> | undefined;
  const backendId = machineOpt.props.get('memory-backend');
  for (const v of all('-object')) {
    const { head, props } = splitQemuOption(v);
    if (!backendId || props.get('id') !== backendId) continue;
    if (props.get('size')) memorySizeBytes = parseQemuSize(props.get('size')!, 'B');
    if (props.get('share') !== 'on' && head !== 'memory-backend-memfd') problems.push(`memory backend ${backendId} is not share=on`);
    if (head === 'memory-backend-memfd') memoryBackend = { kind: 'memfd' };
    else if (head === 'memory-backend-file') memoryBackend = { kind: 'file', path: props.get('mem-path') };
    else memoryBackend = { kind: head };
  }
  if (!memoryBackend) problems.push('guest RAM is not on a shared memory backend (memory-backend-memfd or memory-backend-file, share=on)');

  let boot: Record<string, unknown> | undefined;
  const kernel = last('-kernel');
  if (kernel !== undefined) {
    boot = { kind: 'kernel', kernelPath: kernel, initrdPath: last('-initrd'), append: last('-append') };
  } else {
    const drive = last('-drive');
    if (drive !== undefined) {
      const { props } = splitQemuOption(drive);
      boot = { kind: 'disk', diskPath: props.get('file'), format: props.get('format') ?? 'raw' };
    }
  }

  const taps = new Map<string, string>();
  for (const v of all('-netdev')) {
    const { head, props } = splitQemuOption(v);
    if (head === 'tap' && props.get('id')) taps.set(props.get('id')!, props.get('ifname') ?? '');
  }
  const nics: Array<Record<string, unknown>> = [];
  for (const v of all('-device')) {
    const { head, props } = splitQemuOption(v);
    const netdev = props.get('netdev');
    if (!netdev) continue;
    if (!taps.has(netdev)) {
      problems.push(`NIC on netdev ${netdev} is not a tap`);
      continue;
    }
    nics.push({ mac: props.get('mac'), tapName: taps.get(netdev), netdevId: netdev, model: head });
  }

  const raw = {
    id: name,
    machine: machineOpt.head || 'pc',
    cpuModel: last('-cpu') ? splitQemuOption(last('-cpu')!).head : undefined,
    vcpus,
    memorySizeBytes,
    memoryBackend,
    boot,
    nics,
    qmpSocketPath,
    serialLogPath,
    accel,
  };
  let definition: VmDefinition | undefined;
  if (problems.length === 0) {
    try {
      definition = parseVmDefinition(raw);
    } catch (err) {
      problems.push(errorMessage(err));
    }
  }
  return { name, qmpSocketPath, definition, problems };
}

// QEMU launcher against the real binary (no network, guest kept paused with -S): start-up
// failures carry QEMU's stderr, the preload library reaches the process, the guest RAM memfd is
// found, and a QEMU we did not start is attached to and ended by PID.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildGuestImage } from '../../helpers/guest-image';
import { attachQemu, isPidAlive, launchQemu, type QemuProcess } from '../../../agent/vm/qemu-process';
import { parseVmDefinition, type VmDefinition } from '../../../agent/vm/vm-definition';
import { findGuestRam } from '../../../agent/vm/qemu-guest-ram';
import { UnavailableError } from '../../../shared/errors';

const MEMORY_BYTES = 64 * 1024 * 1024;
/** Any library that is always present and harmless to preload. */
const HARMLESS_PRELOAD = '/lib/x86_64-linux-gnu/libm.so.6';

function qemuMissing(): string | undefined {
  try {
    execFileSync('qemu-system-x86_64', ['--version'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'qemu-system-x86_64 is not installed';
  }
}

const missing = qemuMissing();
if (missing) {
  test.skip(`QEMU process tests skipped: ${missing}`, () => undefined);
} else {
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'umbra-qemu-proc-'));
  const procs: QemuProcess[] = [];
  let seq = 0;

  test.after.always(async () => {
    for (const p of procs) await p.kill().catch(() => undefined);
    await fs.rm(workDir, { recursive: true, force: true });
  });

  async function definition(patch: Record<string, unknown> = {}): Promise<VmDefinition> {
    const image = await buildGuestImage();
    const n = seq++;
    return parseVmDefinition({
      id: `p${n}`,
      memorySizeBytes: MEMORY_BYTES,
      boot: { kind: 'kernel', kernelPath: image.kernelPath, initrdPath: image.initrdPath, append: 'console=ttyS0' },
      nics: [],
      qmpSocketPath: path.join(workDir, `p${n}.qmp`),
      serialLogPath: path.join(workDir, `p${n}.serial`),
      ...patch,
    });
  }

  test.serial('a QEMU that cannot start fails with UnavailableError carrying its stderr', async (t) => {
    const def = await definition({ boot: { kind: 'kernel', kernelPath: path.join(workDir, 'no-such-kernel') } });
    const err = await t.throwsAsync(launchQemu({ def }));
    t.true(err instanceof UnavailableError);
    t.regex(err!.message, /no-such-kernel/);
  });

  test.serial('launch with a preload library, find the memfd RAM, stop through QMP quit', async (t) => {
    const def = await definition();
    const proc = await launchQemu({ def, args: { startPaused: true }, preloadLibraryPath: HARMLESS_PRELOAD, extraEnv: { UMBRA_TEST_MARK: '1' } });
    procs.push(proc);
    t.is((await proc.qmp.queryStatus()).status, 'prelaunch');
    const environ = (await fs.readFile(`/proc/${proc.pid}/environ`, 'utf8')).split('\0');
    t.true(environ.includes(`LD_PRELOAD=${HARMLESS_PRELOAD}`));
    t.true(environ.includes('UMBRA_TEST_MARK=1'));
    const ram = await findGuestRam(proc.pid, MEMORY_BYTES);
    t.regex(ram.target, /^\/memfd:/);
    t.is(ram.sizeBytes, MEMORY_BYTES);
    const exit = await proc.stop(2000);
    t.is(exit.code, 0, 'quit makes QEMU exit cleanly');
    t.false(proc.running);
  });

  test.serial('through a wrapper command the preload is set on QEMU itself, and the PID is QEMU\'s', async (t) => {
    const def = await definition();
    const proc = await launchQemu({ def, args: { startPaused: true }, wrapper: ['env'], preloadLibraryPath: HARMLESS_PRELOAD });
    procs.push(proc);
    t.regex(await fs.readFile(`/proc/${proc.pid}/comm`, 'utf8'), /^qemu-system/);
    const environ = (await fs.readFile(`/proc/${proc.pid}/environ`, 'utf8')).split('\0');
    t.true(environ.includes(`LD_PRELOAD=${HARMLESS_PRELOAD}`));
    await proc.stop(2000);
  });

  test.serial('attach to a QEMU started elsewhere and kill it by PID', async (t) => {
    const def = await definition();
    const starter = await launchQemu({ def, args: { startPaused: true } });
    procs.push(starter);
    starter.close(); // QEMU's QMP socket takes one client at a time: hand it over
    const attached = await attachQemu(starter.pid, def.qmpSocketPath, { def });
    t.is((await attached.qmp.queryStatus()).running, false);
    await attached.kill();
    const exit = await starter.exited;
    t.is(exit.signal, 'SIGKILL');
    t.false(isPidAlive(starter.pid));
  });
}

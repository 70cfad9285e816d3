// A real QEMU guest (TCG, memfd RAM, the uffd preload library in its process) running a
// memory-writing loop, replicated to two shadow receivers while it runs; then paused and
// flushed: both shadow images must equal the guest's RAM byte for byte.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { isRoot, waitFor } from '../../helpers/netns';
import { buildGuestImage, guestKernelAppend } from '../../helpers/guest-image';
import { nativeAvailable, uffdPreloadLibraryPath } from '../../../agent/memory/native-binding';
import { findProcessUffd } from '../../../agent/memory/uffd-wp-tracker';
import { launchQemu, type QemuProcess } from '../../../agent/vm/qemu-process';
import { parseVmDefinition } from '../../../agent/vm/vm-definition';
import { firstDifferentPage, ReplicationHarness } from './replication-harness';

const MEMORY_BYTES = 128 * 1024 * 1024;
const PS = 4096;
const ROUNDS_WHILE_RUNNING = 5;
const ROUND_GAP_MS = 300;
const BOOT_TIMEOUT_MS = 120000;

function skipReason(): string | undefined {
  if (!isRoot()) return 'needs root (pidfd_getfd, /proc/PID/map_files)';
  if (!nativeAvailable()) return 'native addon not built';
  try {
    execFileSync('qemu-system-x86_64', ['--version'], { stdio: 'ignore' });
  } catch {
    return 'qemu-system-x86_64 is not installed';
  }
  return undefined;
}

const why = skipReason();
const workDir = mkdtempSync(path.join(tmpdir(), 'umbra-qemu-repl-'));
let qemu: QemuProcess | undefined;
const harness = new ReplicationHarness();

test.after.always(async () => {
  await harness.close();
  await qemu?.stop(1000).catch(() => undefined);
  rmSync(workDir, { recursive: true, force: true });
});

(why ? test.skip : test)(`QEMU guest replicated to two shadows; after pause + flush both images equal guest RAM${why ? ` (skipped: ${why})` : ''}`, async (t) => {
  const image = await buildGuestImage();
  const def = parseVmDefinition({
    id: 'repl-g1',
    vcpus: 1,
    memorySizeBytes: MEMORY_BYTES,
    memoryBackend: { kind: 'memfd' },
    boot: { kind: 'kernel', kernelPath: image.kernelPath, initrdPath: image.initrdPath, append: guestKernelAppend({ fillPct: 30, memwriteMb: 16, memwriteRateMbps: 40 }) },
    nics: [],
    qmpSocketPath: path.join(workDir, 'g.qmp'),
    serialLogPath: path.join(workDir, 'g.serial'),
  });
  qemu = await launchQemu({ def, preloadLibraryPath: uffdPreloadLibraryPath() });
  t.truthy(findProcessUffd(qemu.pid), 'the preload library left a WP_ASYNC userfaultfd in QEMU');
  await harness.attach({ pid: qemu.pid, sizeBytes: MEMORY_BYTES, pathContains: 'memfd:', tracker: 'uffd-wp', shadows: [{ id: 'shadow-1' }, { id: 'shadow-2' }], vmId: 'repl-g1' });
  t.is(harness.source.status().tracker, 'uffd-wp');
  // First full copy during boot, then rounds while the workload rewrites its buffer.
  await harness.source.runRound();
  await waitFor('guest workload running', async () => ((await qemu!.readSerialLog()).includes('umbra-guest-ready') ? true : undefined), BOOT_TIMEOUT_MS, 250);

  let dirtySeen = 0;
  for (let i = 0; i < ROUNDS_WHILE_RUNNING; i++) {
    const r = await harness.source.runRound();
    dirtySeen += r.dirtyPages;
    await new Promise((resolve) => setTimeout(resolve, ROUND_GAP_MS));
  }
  t.true(dirtySeen > 0, `the running guest dirtied ${dirtySeen} pages across rounds`);
  t.log(`pages dirtied over ${ROUNDS_WHILE_RUNNING} rounds while running: ${dirtySeen}`);

  await qemu.qmp.stop();
  const finalEpoch = await harness.source.flush(60000);
  const status = harness.source.status();
  t.true(status.shadows.every((s) => s.ackedEpoch === finalEpoch), 'both shadows acknowledged the final epoch');
  t.true(status.shadows.every((s) => s.fullResends === 0));
  const guest = harness.sourceRam();
  for (const shadow of harness.shadows) {
    t.is(firstDifferentPage(shadow.image('repl-g1'), guest, PS), -1, `${shadow.id} image equals guest RAM`);
  }
});

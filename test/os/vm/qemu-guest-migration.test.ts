// Real QEMU (TCG) guest in a namespace lab: DHCP from dnsmasq, UDP probes, QMP stop/cont, and a
// device-state-only migration to a second QEMU whose RAM is a shared file holding a copy of the
// source's RAM (x-ignore-shared): the mechanism the switchover uses.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import * as net from 'node:net';
import { promises as fs, mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { NetnsLab, isRoot, run, waitFor } from '../../helpers/netns';
import { buildGuestImage, guestKernelAppend } from '../../helpers/guest-image';
import { addHypervisorHost, addTap, queryGuestStat, startDnsmasq, waitForGuestStat } from '../../helpers/guest/guest-network';
import { guestAddressFromSerial, type GuestStat } from '../../helpers/guest/guest-stat';
import { launchQemu, type QemuProcess } from '../../../agent/vm/qemu-process';
import { parseVmDefinition, type VmDefinition } from '../../../agent/vm/vm-definition';
import { copyGuestRam, findGuestRam } from '../../../agent/vm/qemu-guest-ram';
import { QmpError } from '../../../agent/vm/qmp-errors';
import { discoverQemuProcesses } from '../../../agent/vm/qemu-discovery';
import { HELD_DEVICE_STATE_CAPABILITIES, launchShadowQemu, migrateDeviceState, resumeGuest, startHeldDeviceStateMigration, waitIncomingLoaded } from '../../../agent/vm/device-state-migration';
import { FailedPreconditionError, UmbraError } from '../../../shared/errors';

const GUEST_PORT = 7007;
const GUEST_MAC = '52:54:00:77:00:10';
const MEMORY_BYTES = 128 * 1024 * 1024;
const BOOT_TIMEOUT_MS = 90000;

function skipReason(): string | undefined {
  if (!isRoot()) return 'needs root (namespaces, taps)';
  try {
    execFileSync('qemu-system-x86_64', ['--version'], { stdio: 'ignore' });
  } catch {
    return 'qemu-system-x86_64 is not installed';
  }
  try {
    execFileSync('dnsmasq', ['--version'], { stdio: 'ignore' });
  } catch {
    return 'dnsmasq is not installed';
  }
  return undefined;
}

const reason = skipReason();
if (reason) {
  test.skip(`QEMU guest lab tests skipped: ${reason}`, () => undefined);
} else {
  const lab = new NetnsLab('vm');
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'umbra-vm-test-'));
  const procs: QemuProcess[] = [];
  let def: VmDefinition;
  let src: QemuProcess;
  /** Where the guest runs after the device-state migration test (the next test moves it on). */
  let migrated: QemuProcess | undefined;
  let migratedImage = '';
  let hv1 = '';
  let hv2 = '';
  let client = '';
  let guestIp = '';

  test.before(async () => {
    const image = await buildGuestImage();
    await lab.start();
    const dhcp = await lab.addHost('dhcp');
    await lab.link(dhcp, { bridge: 'vmnet', ifname: 'eth0', address: '10.77.0.1/24' });
    await startDnsmasq(lab, dhcp, { ifname: 'eth0', rangeStart: '10.77.0.100', rangeEnd: '10.77.0.150', workDir });
    client = await lab.addHost('cli');
    await lab.link(client, { bridge: 'vmnet', ifname: 'eth0', address: '10.77.0.2/24' });
    hv1 = await addHypervisorHost(lab, 'hv1', 'vmnet');
    hv2 = await addHypervisorHost(lab, 'hv2', 'vmnet');
    await addTap(hv1, 'tap-g1');
    await addTap(hv2, 'tap-g1s');
    def = parseVmDefinition({
      id: 'g1',
      vcpus: 1,
      memorySizeBytes: MEMORY_BYTES,
      memoryBackend: { kind: 'memfd' },
      boot: { kind: 'kernel', kernelPath: image.kernelPath, initrdPath: image.initrdPath, append: guestKernelAppend({ port: GUEST_PORT, memwriteMb: 8, memwriteRateMbps: 20 }) },
      nics: [{ mac: GUEST_MAC, tapName: 'tap-g1', netdevId: 'net0' }],
      qmpSocketPath: path.join(workDir, 'g1.qmp'),
      serialLogPath: path.join(workDir, 'g1.serial'),
    });
    src = await launchQemu({ def, wrapper: ['ip', 'netns', 'exec', hv1] });
    procs.push(src);
    try {
      guestIp = await waitFor('guest DHCP lease on the serial console', async () => guestAddressFromSerial(await src.readSerialLog()), BOOT_TIMEOUT_MS, 250);
    } catch (err) {
      const tail = (await src.readSerialLog()).split('\n').slice(-15).join('\n');
      throw new Error(`${(err as Error).message}; namespaces: ${await run('ip', ['netns', 'list'])}; serial log tail:\n${tail}`);
    }
  });

  /** A shadow QEMU of the guest in `ns` on a fresh (all holes) image `<tag>.ram`, listening on `<tag>.sock`. */
  async function launchShadow(tag: string, ns: string, tap: string): Promise<{ proc: QemuProcess; image: string; uri: string }> {
    const image = path.join(workDir, `${tag}.ram`);
    await fs.writeFile(image, '');
    await fs.truncate(image, MEMORY_BYTES);
    const uri = `unix:${path.join(workDir, `${tag}.sock`)}`;
    const proc = await launchShadowQemu({
      def,
      ramFile: image,
      tapNames: { net0: tap },
      qmpSocketPath: path.join(workDir, `${tag}.qmp`),
      serialLogPath: path.join(workDir, `${tag}.serial`),
      incomingUri: uri,
      wrapper: ['ip', 'netns', 'exec', ns],
    });
    procs.push(proc);
    return { proc, image, uri };
  }

  test.after.always(async () => {
    for (const p of procs) await p.stop(1000).catch(() => undefined);
    await lab.cleanup();
    await fs.rm(workDir, { recursive: true, force: true });
  });

  test.serial('guest takes its address from dnsmasq and answers UDP probes with an advancing counter', async (t) => {
    t.regex(guestIp, /^10\.77\.0\.(1[0-4]\d|150)$/);
    const first = await waitForGuestStat(lab, client, guestIp, GUEST_PORT, 30000);
    const later = await waitFor('counter to advance', async () => {
      const s = await queryGuestStat(lab, client, guestIp, GUEST_PORT);
      return s && s.counter > first.counter ? s : undefined;
    }, 10000, 200);
    t.is(later.boot, first.boot);
    t.true(later.counter > first.counter);
    t.is(later.memwriteMb, 8);
  });

  test.serial('discovery finds the running QEMU by its QMP socket and reads back its definition', async (t) => {
    const found = (await discoverQemuProcesses()).find((q) => q.pid === src.pid);
    t.truthy(found, 'our QEMU is listed');
    t.is(found?.qmpSocketPath, def.qmpSocketPath);
    t.deepEqual(found?.problems, []);
    t.deepEqual(found?.definition, def);
  });

  test.serial('QMP stop pauses the guest (no answers) and cont resumes it', async (t) => {
    t.deepEqual((await src.qmp.queryStatus()).status, 'running');
    const stopEvent = src.qmp.waitForEvent('STOP', 5000);
    await src.qmp.stop();
    await stopEvent;
    const paused = await src.qmp.queryStatus();
    t.is(paused.status, 'paused');
    t.false(paused.running);
    t.is(await queryGuestStat(lab, client, guestIp, GUEST_PORT, 600), undefined);
    await src.qmp.cont();
    t.true((await src.qmp.queryStatus()).running);
    const back = await waitForGuestStat(lab, client, guestIp, GUEST_PORT, 10000);
    t.true(back.counter > 0);
    const err = await t.throwsAsync(src.qmp.execute('no-such-command'));
    t.true(err instanceof QmpError);
    t.is((err as QmpError).errorClass, 'CommandNotFound');
    const memdev = await src.qmp.queryMemdev();
    t.is(memdev[0]?.size, MEMORY_BYTES);
    t.true(memdev[0]?.share);
  });

  test.serial('device-state migration is refused while the source runs, and a failed stream leaves the source resumable', async (t) => {
    t.true((await src.qmp.queryStatus()).running);
    await t.throwsAsync(migrateDeviceState(src.qmp, `unix:${path.join(workDir, 'nobody.sock')}`), { instanceOf: FailedPreconditionError });
    await src.qmp.stop();
    const err = await t.throwsAsync(migrateDeviceState(src.qmp, `unix:${path.join(workDir, 'nobody.sock')}`, 5000));
    t.true(err instanceof UmbraError, String(err));
    t.false((await src.qmp.queryStatus()).running, 'source still paused after the failure');
    await resumeGuest(src.qmp);
    t.true((await src.qmp.queryStatus()).running);
    t.truthy(await waitForGuestStat(lab, client, guestIp, GUEST_PORT, 10000));
  });

  test.serial('a held device-state migration connects and stops before its device state; cancelled there, the source stays paused and resumes', async (t) => {
    // A sink stands in for the destination: the source sends no device state to it until proceed().
    const sockPath = path.join(workDir, 'sink.sock');
    let received = 0;
    const sink = net.createServer((c) => c.on('data', (d: Buffer) => (received += d.length)).on('error', () => undefined));
    await new Promise<void>((r) => sink.listen(sockPath, r));
    try {
      await src.qmp.migrateSetCapabilities({ ...HELD_DEVICE_STATE_CAPABILITIES });
      await src.qmp.stop();
      const held = await startHeldDeviceStateMigration(src.qmp, `unix:${sockPath}`, 10000);
      await waitFor('the migration to hold before the device state', async () => ((await src.qmp.queryMigrate()).status === 'pre-switchover' ? true : undefined), 10000, 20);
      const atHold = received;
      t.true(atHold > 0, 'connected: header and the small non-shared RAM went out');
      await new Promise((r) => setTimeout(r, 200));
      t.is(received, atHold, 'nothing more while held');
      await held.cancel();
      await waitFor('the cancel to end the migration', async () => ((await src.qmp.queryMigrate()).status === 'cancelled' ? true : undefined), 10000, 20);
      t.false((await src.qmp.queryStatus()).running, 'QEMU does not resume a guest that was paused before the migration began');
      // The next device-state migration is not held: the capability is switched off with it.
      await t.throwsAsync(migrateDeviceState(src.qmp, `unix:${path.join(workDir, 'nobody.sock')}`, 5000));
      await resumeGuest(src.qmp);
      t.true((await src.qmp.queryStatus()).running);
      t.truthy(await waitForGuestStat(lab, client, guestIp, GUEST_PORT, 10000));
    } finally {
      sink.close();
    }
  });

  test.serial('device-state-only migration to a shadow QEMU on a copy of the RAM: the guest continues on the destination', async (t) => {
    // As in production: the shadow QEMU is up first, on an image that is filled in afterwards
    // (QEMU maps it shared, so what is written to the file is what the guest will see).
    const { proc: dst, image: shadowImage, uri } = await launchShadow('g1-shadow', hv2, 'tap-g1s');

    const before = await waitForGuestStat(lab, client, guestIp, GUEST_PORT, 10000);
    await src.qmp.stop();
    const ram = await findGuestRam(src.pid, MEMORY_BYTES);
    const copied = await copyGuestRam(ram, shadowImage);
    t.is(copied.bytesCopied, MEMORY_BYTES, 'an existing image is updated in full, in place');
    t.is((await dst.qmp.queryStatus()).status, 'inmigrate');
    t.true((await dst.qmp.queryMemdev())[0]?.share);
    // An armed resume called off before the device state came: the cont that armed QEMU's
    // autostart is taken back by a stop, so the load below ends paused.
    await dst.qmp.cont();
    await dst.qmp.stop();
    t.is((await dst.qmp.queryStatus()).status, 'inmigrate');

    const result = await migrateDeviceState(src.qmp, uri);
    t.log(`device-state migration: ${result.elapsedMs.toFixed(1)} ms seen here, QEMU total ${result.totalTimeMs} ms, downtime ${result.downtimeMs} ms, RAM sent ${result.ramTransferredBytes} bytes`);
    // Only device state and small non-shared blocks (ROMs) crossed, not the guest's RAM.
    t.true(result.ramTransferredBytes < MEMORY_BYTES / 16);
    await waitIncomingLoaded(dst.qmp);
    t.is((await dst.qmp.queryStatus()).status, 'paused', 'the shadow waits for an explicit resume');
    await resumeGuest(dst.qmp);
    t.true((await dst.qmp.queryStatus()).running);
    t.is((await src.qmp.queryStatus()).status, 'postmigrate');

    const after: GuestStat = await waitForGuestStat(lab, client, guestIp, GUEST_PORT, 20000);
    t.is(after.boot, before.boot, 'same boot: the guest was not restarted');
    t.true(after.counter >= before.counter, `counter continued (${before.counter} -> ${after.counter})`);
    const later = await waitFor('counter to advance on the destination', async () => {
      const s = await queryGuestStat(lab, client, guestIp, GUEST_PORT);
      return s && s.counter > after.counter ? s : undefined;
    }, 10000, 200);
    t.is(later.boot, before.boot);
    t.true(later.memwritePasses >= before.memwritePasses);
    // The source stays paused and intact (rollback material) until it is retired.
    t.true(src.running);
    migrated = dst;
    migratedImage = shadowImage;
  });

  test.serial('held device-state migration as in a switch-out: RAM completed while the migration is held is what the destination runs on', async (t) => {
    if (!migrated) return t.fail('the previous test did not move the guest');
    const from = migrated;
    await addTap(hv1, 'tap-g1b');
    const { proc: dst, image, uri } = await launchShadow('g1-back', hv1, 'tap-g1b');
    const before = await waitForGuestStat(lab, client, guestIp, GUEST_PORT, 10000);
    await from.qmp.migrateSetCapabilities({ ...HELD_DEVICE_STATE_CAPABILITIES });
    await from.qmp.stop();
    const held = await startHeldDeviceStateMigration(from.qmp, uri, 20000);
    // Armed as an agent's armed resume arms it: a cont while the shadow waits runs nothing yet,
    // and QEMU runs the guest itself when the load ends, although the source was paused (its
    // run state does not travel: agents start QEMU with migration.store-global-state=off).
    const resumed = dst.qmp.waitForEvent('RESUME', 20000);
    await dst.qmp.cont();
    t.is((await dst.qmp.queryStatus()).status, 'inmigrate', 'a cont while waiting for the device state runs nothing yet');
    // The final flush's part: the image gets the guest's RAM only now, after the migration began
    // (the running guest's RAM is the previous shadow's image file).
    await fs.copyFile(migratedImage, image);
    const result = await held.proceed();
    t.log(`held device-state migration: ${result.elapsedMs.toFixed(1)} ms from proceed() to completion`);
    t.true(result.ramTransferredBytes < MEMORY_BYTES / 16);
    const loaded = await waitIncomingLoaded(dst.qmp);
    const run = await resumed;
    t.true((await dst.qmp.queryStatus()).running, 'running without a cont after the load');
    if (loaded.completedAtMs !== undefined && run.timestampMs !== undefined) t.true(run.timestampMs <= loaded.completedAtMs + 1, 'QEMU ran the guest as the load ended');
    t.is((await from.qmp.queryStatus()).status, 'postmigrate');
    const after = await waitForGuestStat(lab, client, guestIp, GUEST_PORT, 20000);
    t.is(after.boot, before.boot, 'same boot: the guest was not restarted');
    const later = await waitFor('counter to advance on the destination', async () => {
      const s = await queryGuestStat(lab, client, guestIp, GUEST_PORT);
      return s && s.counter > after.counter ? s : undefined;
    }, 10000, 200);
    t.true(later.counter > before.counter);
  });
}

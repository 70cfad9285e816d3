// The VM switchover end to end with real processes: a coordinator and two agents in network
// namespaces; hv-a's agent launches a QEMU (TCG) guest that takes its address from dnsmasq; its
// RAM is shadowed to hv-b, where the coordinator has a shadow QEMU prepared; TriggerMigration
// moves the guest: its counter continues (same boot), the same address answers, the source is
// paused. A switchover back to a host without a ready shadow is refused.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { nativeAvailable } from '../../../agent/memory/native-binding';
import { NetnsLab, isRoot, waitFor } from '../../helpers/netns';
import { createPkiFixture, type PkiFixture } from '../../helpers/pki-fixture';
import { buildGuestImage } from '../../helpers/guest-image';
import { addHypervisorHost, addTap, queryGuestStat, startDnsmasq, waitForGuestStat } from '../../helpers/guest/guest-network';
import { AGENT_MAIN, COORDINATOR_MAIN, MGMT_BRIDGE, MGMT_PREFIX, type ProcessHandle, agentConfig, coordinatorConfig, startNode, umbractlJson, waitForLog } from '../../helpers/umbra-cluster';
import { guestAddressFromSerial } from '../../helpers/guest/guest-stat';
import { readFileSync } from 'node:fs';
import { type ClusterGuest, type WireSwitchover, addVmSwitchoverSections, guestSerialPath, killQemusUnder, vmAgentSections } from '../../helpers/vm-cluster';

const VM = 'g1';
const MAC = '52:54:00:78:00:01';
const PORT = 7007;
const MEMORY_BYTES = 128 * 1024 * 1024;
const COORD_IP = `${MGMT_PREFIX}.1`;
const HOSTS: Array<[string, string]> = [['hv-a', `${MGMT_PREFIX}.11`], ['hv-b', `${MGMT_PREFIX}.12`]];
const VMNET = '10.78.0';

function skipReason(): string | undefined {
  if (!isRoot()) return 'needs root (namespaces, taps, pidfd_getfd)';
  if (!nativeAvailable()) return 'native addon not built';
  for (const bin of ['qemu-system-x86_64', 'dnsmasq']) {
    try {
      execFileSync(bin, ['--version'], { stdio: 'ignore' });
    } catch {
      return `${bin} is not installed`;
    }
  }
  return undefined;
}

const why = skipReason();
if (why) {
  test(`VM switchover across agents (skipped: ${why})`, (t) => {
    t.log(`skipped: ${why}`);
    t.pass();
  });
} else {
  let lab: NetnsLab;
  let pki: PkiFixture;
  let coordinator: ProcessHandle;
  const ns: Record<string, string> = {};
  const agents: Record<string, ProcessHandle> = {};
  let guestIp = '';
  let guest: ClusterGuest;
  const ctl = <T>(args: string[]) => umbractlJson<T>(lab, ns.coord, pki.operator, COORD_IP, args);

  test.before(async () => {
    const image = await buildGuestImage();
    pki = await createPkiFixture(HOSTS.map(([h]) => h));
    guest = { id: VM, mac: MAC, tap: 'tap-g1', memoryBytes: MEMORY_BYTES, image, workload: { port: PORT, memwriteMb: 8, memwriteRateMbps: 10 }, dir: path.join(pki.dir, 'hv-a') };
    lab = new NetnsLab('s');
    await lab.start();
    for (const [name, ip] of [['coord', COORD_IP], ...HOSTS]) {
      ns[name] = name === 'coord' ? await lab.addHost(name) : await addHypervisorHost(lab, name, 'vmnet');
      await lab.link(ns[name], { bridge: MGMT_BRIDGE, ifname: 'eth0', address: `${ip}/24` });
    }
    ns.dhcp = await lab.addHost('dhcp');
    await lab.link(ns.dhcp, { bridge: 'vmnet', ifname: 'eth0', address: `${VMNET}.1/24` });
    await startDnsmasq(lab, ns.dhcp, { ifname: 'eth0', rangeStart: `${VMNET}.100`, rangeEnd: `${VMNET}.150`, workDir: pki.dir });
    ns.cli = await lab.addHost('cli');
    await lab.link(ns.cli, { bridge: 'vmnet', ifname: 'eth0', address: `${VMNET}.2/24` });
    await addTap(ns['hv-a'], guest.tap);

    const coordCfg = coordinatorConfig(path.join(pki.dir, 'coord'), pki.coordinator);
    addVmSwitchoverSections(coordCfg, { maxShadowedVms: 1 });
    coordinator = startNode(lab, ns.coord, [COORDINATOR_MAIN, '--config', coordCfg]);
    await waitForLog(coordinator, /coordinator started/, 'coordinator start');

    for (const [id, ip] of HOSTS) {
      agents[id] = startNode(lab, ns[id], [AGENT_MAIN, '--config', agentConfig(path.join(pki.dir, id), id, ip, COORD_IP, pki.agent(id), vmAgentSections(id, ip, 'hv-a', guest))]);
    }
    await waitFor('agents registered', async () => {
      const hosts = await ctl<Array<{ state: string }>>(['hosts']);
      return hosts.length === 2 && hosts.every((h) => h.state === 'HOST_STATE_UP');
    }, 30000);
    const serial = guestSerialPath(guest);
    guestIp = await waitFor('guest lease on the serial console', async () => {
      try {
        return guestAddressFromSerial(readFileSync(serial, 'utf8'));
      } catch {
        return undefined;
      }
    }, 120000, 500).catch((err) => {
      throw new Error(`${(err as Error).message}; agent log: ${agents['hv-a'].log.slice(-15).join('\n')}`);
    });
  });

  test.after.always(async () => {
    // QEMUs the agents launched outlive them: stop ours (QMP sockets under this run's dir) by PID.
    if (pki) await killQemusUnder(pki.dir);
    await lab?.cleanup();
    pki?.cleanup();
  });

  test.serial('a switchover without a ready shadow is refused with the reason', async (t) => {
    await waitForGuestStat(lab, ns.cli, guestIp, PORT, 60000);
    const err = await t.throwsAsync(ctl(['migrate', VM, '--to', 'hv-b']));
    t.regex(String(err?.message), /no shadow VM|not current|not shadowed|no IP|shadow/);
  });

  test.serial('the running guest switches over to hv-b: counter continues, same address answers, source paused', async (t) => {
    await ctl(['replication', 'start', VM, '--from', 'hv-a', '--to', 'hv-b']);
    const before = await waitForGuestStat(lab, ns.cli, guestIp, PORT, 30000);
    // Shadow ready: IP shadow current, shadow QEMU waiting, memory streaming with an acked epoch.
    const ev = await waitFor('switchover accepted', async () => {
      try {
        return await ctl<{ switchover?: WireSwitchover } & WireSwitchover>(['migrate', VM, '--to', 'hv-b']);
      } catch (err) {
        void err;
        return undefined;
      }
    }, 90000, 2000).catch((err) => {
      throw new Error(`${(err as Error).message}; hv-b agent: ${agents['hv-b'].log.filter((l) => /shadow|qemu|error/i.test(l)).slice(-8).join('\n')}`);
    });
    const sw = (ev.switchover ?? ev) as WireSwitchover;
    t.log(sw.steps.map((s) => `${s.step}@${s.host_id} ${s.duration_ms.toFixed(1)} ms ${s.ok ? 'ok' : s.error}`).join('\n'));
    t.is(sw.status, 'SUCCEEDED', sw.error);
    t.deepEqual(sw.steps.slice(0, 5).map((s) => s.step), ['pause-source', 'flush-memory', 'migrate-device-state', 'resume-destination', 'switch-ip']);
    const after = await waitForGuestStat(lab, ns.cli, guestIp, PORT, 20000);
    t.is(after.boot, before.boot, 'same boot: no reboot');
    const later = await waitFor('counter advancing on hv-b', async () => {
      const s = await queryGuestStat(lab, ns.cli, guestIp, PORT);
      return s && s.counter > after.counter ? s : undefined;
    }, 15000, 300);
    t.true(later.counter > before.counter);
    const healthA = JSON.parse(await lab.exec(ns['hv-a'], process.execPath, [AGENT_MAIN, 'health', '--json', '--config', path.join(pki.dir, 'hv-a', 'agent.yaml')])) as {
      report: { capabilities: Array<{ name: string; detail: string }> };
    };
    t.regex(healthA.report.capabilities.find((c) => c.name === 'vms')!.detail, /g1 postmigrate/);
    const healthB = JSON.parse(await lab.exec(ns['hv-b'], process.execPath, [AGENT_MAIN, 'health', '--json', '--config', path.join(pki.dir, 'hv-b', 'agent.yaml')])) as {
      report: { capabilities: Array<{ name: string; detail: string }> };
    };
    t.regex(healthB.report.capabilities.find((c) => c.name === 'vms')!.detail, /g1 running/);
  });
}

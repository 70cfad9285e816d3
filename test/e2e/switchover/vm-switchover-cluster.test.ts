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
import { buildGuestImage, guestKernelAppend } from '../../helpers/guest-image';
import { HOST_VM_BRIDGE, addHypervisorHost, addTap, queryGuestStat, startDnsmasq, waitForGuestStat } from '../../helpers/guest/guest-network';
import { AGENT_MAIN, COORDINATOR_MAIN, MGMT_BRIDGE, MGMT_PREFIX, type ProcessHandle, agentConfig, coordinatorConfig, startNode, umbractlJson, waitForLog, writeYaml } from '../../helpers/umbra-cluster';
import { parse } from 'yaml';
import { guestAddressFromSerial } from '../../helpers/guest/guest-stat';
import { readFileSync } from 'node:fs';
import { shadowTapName } from '../../../agent/vm/vm-agent-host';

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

/** True while `pid` exists at all (zombies included). */
function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

interface WireSwitchover {
  status: string;
  source_host: string;
  destination_host: string;
  error: string;
  steps: Array<{ step: string; host_id: string; duration_ms: number; ok: boolean; error: string }>;
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
  const ctl = <T>(args: string[]) => umbractlJson<T>(lab, ns.coord, pki.operator, COORD_IP, args);

  test.before(async () => {
    const image = await buildGuestImage();
    pki = await createPkiFixture(HOSTS.map(([h]) => h));
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
    await addTap(ns['hv-a'], 'tap-g1');

    const coordCfg = coordinatorConfig(path.join(pki.dir, 'coord'), pki.coordinator);
    const cfg = parse(readFileSync(coordCfg, 'utf8')) as Record<string, unknown>;
    cfg.ipshadow = { shadowing_threshold: 0.1, max_shadowed_vms: 1, placement_uses_host_load: false, shadowing_refresh_interval_ms: 1000, reconcile_interval_ms: 3000 };
    cfg.switchover = { shadow_vm_interval_ms: 500 };
    writeYaml(coordCfg, cfg);
    coordinator = startNode(lab, ns.coord, [COORDINATOR_MAIN, '--config', coordCfg]);
    await waitForLog(coordinator, /coordinator started/, 'coordinator start');

    for (const [id, ip] of HOSTS) {
      const dir = path.join(pki.dir, id);
      const qmp = path.join(dir, 'g1.qmp');
      const vm =
        id === 'hv-a'
          ? {
              vm_bridge: HOST_VM_BRIDGE,
              incoming_host: ip,
              vms: [
                {
                  id: VM,
                  memory_size_bytes: MEMORY_BYTES,
                  boot: { kind: 'kernel', kernel_path: image.kernelPath, initrd_path: image.initrdPath, append: guestKernelAppend({ port: PORT, memwriteMb: 8, memwriteRateMbps: 10 }) },
                  nics: [{ mac: MAC, tap_name: 'tap-g1', netdev_id: 'net0' }],
                  qmp_socket_path: qmp,
                  serial_log_path: path.join(dir, 'g1.serial'),
                },
              ],
            }
          : { vm_bridge: HOST_VM_BRIDGE, incoming_host: ip };
      const replication = id === 'hv-a' ? { min_round_interval_ms: 50, vms: [{ id: VM, qmp_socket: qmp, memory_bytes: MEMORY_BYTES }] } : { min_round_interval_ms: 50 };
      // Bridged mode needs the VM's port on each host: its declared tap on hv-a, the shadow's tap on hv-b.
      const ipshadow = { capture_interfaces: [HOST_VM_BRIDGE], interface: HOST_VM_BRIDGE, report_interval_ms: 1000, vms: [{ id: VM, mac: MAC, tap: id === 'hv-a' ? 'tap-g1' : shadowTapName(VM, 'net0') }] };
      agents[id] = startNode(lab, ns[id], [AGENT_MAIN, '--config', agentConfig(dir, id, ip, COORD_IP, pki.agent(id), { vm, replication, ipshadow })]);
    }
    await waitFor('agents registered', async () => {
      const hosts = await ctl<Array<{ state: string }>>(['hosts']);
      return hosts.length === 2 && hosts.every((h) => h.state === 'HOST_STATE_UP');
    }, 30000);
    const serial = path.join(pki.dir, 'hv-a', 'g1.serial');
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
    const { discoverQemuProcesses } = await import('../../../agent/vm/qemu-discovery');
    const killed: number[] = [];
    for (const q of await discoverQemuProcesses().catch(() => [])) {
      if (pki && q.qmpSocketPath.startsWith(pki.dir)) {
        try {
          process.kill(q.pid, 'SIGKILL');
          killed.push(q.pid);
        } catch {
          // already gone
        }
      }
    }
    // Their parent (an agent) may be gone too: wait until they are reaped, so none is left behind.
    await waitFor('killed QEMUs reaped', async () => killed.every((pid) => !pidExists(pid)) || undefined, 10000, 100).catch(() => undefined);
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

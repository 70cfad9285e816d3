// Through a real agent process in a namespace: `umbra-agent health` lists the VM it launched (QEMU
// pid, run state, tap) and the shadow it holds (IP config version and age, shadow QEMU state and its
// own tap); and ipshadow, with no tap in its config, activates the shadow's address in bridged mode
// on the tap the vm module created for the shadow QEMU (FDB entry for the VM's MAC on that tap).
import test from 'ava';
import { execFile, execFileSync } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { shadowTapName } from '../../../agent/vm/vm-agent-host';
import { NetnsLab, isRoot, run, waitFor } from '../../helpers/netns';
import { createPkiFixture, type PkiFixture } from '../../helpers/pki-fixture';
import { buildGuestImage, guestKernelAppend } from '../../helpers/guest-image';
import { HOST_VM_BRIDGE, addHypervisorHost, addTap } from '../../helpers/guest/guest-network';
import { AGENT_MAIN, GRPC_CALL, MGMT_BRIDGE, MGMT_PREFIX, type ProcessHandle, agentConfig, startNode, waitForLog } from '../../helpers/umbra-cluster';
import { killQemusUnder } from '../../helpers/vm-cluster';

const execFileP = promisify(execFile);
const HOST_IP = `${MGMT_PREFIX}.21`;
const LOCAL = { id: 'g1', mac: '52:54:00:79:00:01', tap: 'tap-g1' };
const SHADOW = { id: 'g7', mac: '52:54:00:79:00:07', address: '10.79.5.7' };
const MIB = 1048576;

function skipReason(): string | undefined {
  if (!isRoot()) return 'needs root (namespaces, taps)';
  try {
    execFileSync('qemu-system-x86_64', ['--version'], { stdio: 'ignore' });
  } catch {
    return 'qemu-system-x86_64 is not installed';
  }
  return undefined;
}

interface HealthJson {
  healthy: boolean;
  report: {
    capabilities: Array<{ name: string; available: boolean; detail: string }>;
    vms: Array<{ vm_id: string; qemu_pid: number; run_state: string; taps: string[]; memory_bytes: string; memory_tracker: string }>;
    shadows: Array<{ vm_id: string; source_host: string; ip_config_held: boolean; ip_config_version: string; ip_config_age_ms: string; ip_active: boolean; qemu_state: string; qemu_pid: number; taps: string[]; memory_image_held: boolean }>;
  };
}

const why = skipReason();
if (why) {
  test(`agent health lists VMs and shadows (skipped: ${why})`, (t) => {
    t.log(`skipped: ${why}`);
    t.pass();
  });
} else {
  let lab: NetnsLab;
  let pki: PkiFixture;
  let ns = '';
  let agent: ProcessHandle;
  let cfgPath = '';

  const call = async <T>(service: string, method: string, request: unknown) => {
    const out = await lab.exec(ns, process.execPath, [GRPC_CALL, `umbra.agent.v1.${service}`, method, `${HOST_IP}:7701`, pki.coordinator.ca, pki.coordinator.cert, pki.coordinator.key, 'agent', JSON.stringify(request)]);
    return JSON.parse(out) as { code: number; details: string; response?: T };
  };
  /** The health command exits 1 here (no coordinator runs): its JSON is read either way. */
  const health = async (screen = false): Promise<string> => {
    const args = ['netns', 'exec', ns, process.execPath, AGENT_MAIN, 'health', ...(screen ? [] : ['--json']), '--config', cfgPath];
    try {
      return (await execFileP('ip', args)).stdout;
    } catch (err) {
      const e = err as { code?: number; stdout?: string };
      if (e.code === 1 && e.stdout) return e.stdout;
      throw err;
    }
  };

  test.before(async () => {
    const image = await buildGuestImage();
    pki = await createPkiFixture(['hv-v']);
    lab = new NetnsLab('h');
    await lab.start();
    ns = await addHypervisorHost(lab, 'hv-v', 'vmlan');
    await lab.link(ns, { bridge: MGMT_BRIDGE, ifname: 'eth0', address: `${HOST_IP}/24` });
    await addTap(ns, LOCAL.tap);
    const dir = path.join(pki.dir, 'hv-v');
    cfgPath = agentConfig(dir, 'hv-v', HOST_IP, `${MGMT_PREFIX}.1`, pki.agent('hv-v'), {
      vm: {
        vm_bridge: HOST_VM_BRIDGE,
        incoming_host: HOST_IP,
        vms: [
          {
            id: LOCAL.id,
            memory_size_bytes: 64 * MIB,
            boot: { kind: 'kernel', kernel_path: image.kernelPath, initrd_path: image.initrdPath, append: guestKernelAppend() },
            nics: [{ mac: LOCAL.mac, tap_name: LOCAL.tap, netdev_id: 'net0' }],
            qmp_socket_path: path.join(dir, `${LOCAL.id}.qmp`),
            serial_log_path: path.join(dir, `${LOCAL.id}.serial`),
          },
        ],
      },
      // No VM entries: the taps come from the vm module.
      ipshadow: { interface: HOST_VM_BRIDGE, mode: 'bridged' },
    });
    agent = startNode(lab, ns, [AGENT_MAIN, '--config', cfgPath]);
    await waitForLog(agent, /agent started/, 'agent start', 30000);
  });

  test.after.always(async () => {
    // The agent first (it could still launch a shadow QEMU), then the QEMUs it launched, by PID.
    if (lab && agent) await lab.stop(agent.child, 1000).catch(() => undefined);
    if (pki) await killQemusUnder(pki.dir);
    await lab?.cleanup();
    pki?.cleanup();
  });

  test.serial('health lists the local VM and the held shadow; bridged activation uses the shadow QEMU tap', async (t) => {
    const dir = path.join(pki.dir, 'hv-v');
    const def = {
      id: SHADOW.id, memorySizeBytes: 64 * MIB, boot: { kind: 'kernel', kernelPath: (await buildGuestImage()).kernelPath },
      nics: [{ mac: SHADOW.mac, tapName: 'tap-src-g7', netdevId: 'net0' }],
      qmpSocketPath: path.join(dir, 'src-g7.qmp'), serialLogPath: path.join(dir, 'src-g7.serial'),
    };
    const prep = await call<{ launched: boolean }>('VmService', 'PrepareShadowVm', { vm_id: SHADOW.id, definition_json: JSON.stringify(def) });
    t.is(prep.code, 0, prep.details);
    const config = { vm_id: SHADOW.id, mac: SHADOW.mac, address: SHADOW.address, prefix_length: 24, lease_state: 'bound', mode: 'bridged' };
    const put = await call('IpShadowService', 'PutShadow', { source_host: 'hv-src', config, version: 3 });
    t.is(put.code, 0, put.details);

    const h = await waitFor('local VM running in health', async () => {
      const j = JSON.parse(await health()) as HealthJson;
      return j.report.vms.find((v) => v.vm_id === LOCAL.id)?.run_state === 'running' ? j : undefined;
    }, 60000, 500);
    const vm = h.report.vms.find((v) => v.vm_id === LOCAL.id)!;
    t.true(vm.qemu_pid > 0);
    t.deepEqual(vm.taps, [LOCAL.tap]);
    t.is(Number(vm.memory_bytes), 64 * MIB);
    t.is(vm.memory_tracker, '', 'not replicating');
    const shadowTap = shadowTapName(SHADOW.id, 'net0');
    const s = h.report.shadows.find((x) => x.vm_id === SHADOW.id)!;
    t.truthy(s, JSON.stringify(h.report.shadows));
    t.like(s, { source_host: 'hv-src', ip_config_held: true, ip_config_version: '3', qemu_state: 'inmigrate', ip_active: false, memory_image_held: false });
    t.true(Number(s.ip_config_age_ms) >= 0);
    t.true(s.qemu_pid > 0);
    t.deepEqual(s.taps, [shadowTap]);
    t.false(h.report.shadows.some((x) => x.vm_id === LOCAL.id));
    // Hand-over datagrams are received on the agent's listen address and port, over UDP.
    t.like(h.report.capabilities.find((c) => c.name === 'handover-datagrams'), { available: true, detail: 'udp 0.0.0.0:7701' });

    const screen = await health(true);
    t.regex(screen, new RegExp(`VMs here \\(1\\):\\n {4}g1 {2}running {2}pid ${vm.qemu_pid} {2}tap tap-g1`));
    t.regex(screen, /shadows held here \(1\):\n {4}g7 from hv-src\n {6}ip config {3}v3, pushed .* ago/);
    t.regex(screen, new RegExp(`qemu {8}inmigrate pid ${s.qemu_pid} tcp:${HOST_IP.replace(/\./g, '\\.')}:\\d+ tap ${shadowTap}`));

    // ipshadow has no tap in its config: activation must find the shadow QEMU's tap via the vm module.
    const act = await call('IpShadowService', 'ActivateIp', { vm_id: SHADOW.id, fencing_token: 1 });
    t.is(act.code, 0, act.details);
    const fdb = await run('bridge', ['-n', ns, 'fdb', 'show', 'dev', shadowTap]);
    t.regex(fdb, new RegExp(`${SHADOW.mac} .*static`), fdb);
    const neigh = await run('ip', ['-n', ns, 'neigh', 'show', SHADOW.address]);
    t.regex(neigh, new RegExp(SHADOW.mac), neigh);
    const after = JSON.parse(await health()) as HealthJson;
    t.true(after.report.shadows.find((x) => x.vm_id === SHADOW.id)!.ip_active);
  });
}

// IP shadowing end to end with real processes in network namespaces: a guest gets a lease from
// dnsmasq, the source agent reports it, shadows appear on N destinations with the same config, a
// renewal with a changed option reaches every shadow, a switchover moves the address while a client
// probes it over UDP, and stale fencing tokens and destinations without a shadow are refused.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { ChildProcess } from 'node:child_process';
import type { UmbraEvent } from '../../../shared/host-types';
import { encodeHandoverDatagram } from '../../../shared/handover-datagram';
import { buildProber, buildResponder, readProberReport } from '../../../bench/ip-switchover/udp-prober-client';
import { NetnsLab, isRoot, run, waitFor } from '../../helpers/netns';
import { createPkiFixture, type PkiFixture } from '../../helpers/pki-fixture';
import {
  AGENT_MAIN, COORDINATOR_MAIN, COORDINATOR_PORT, DIST, GRPC_CALL, MGMT_BRIDGE, MGMT_PREFIX, REPO_ROOT,
  type ProcessHandle, agentConfig, startNode, umbractlJson, waitForLog, writeYaml,
} from '../../helpers/umbra-cluster';

const COORD_IP = `${MGMT_PREFIX}.1`;
const VMNET = '10.79.0';
const GUEST_MAC = '52:54:00:79:00:01';
const UDP_PORT = 7777;
const HOSTS = ['hv-a', 'hv-b', 'hv-c', 'hv-d'];
/** The host whose agent runs without hand-over datagrams (ipshadow.handover_datagrams: false). */
const NO_DATAGRAMS = 'hv-d';
const UDHCPC_SCRIPT = path.join(REPO_ROOT, 'test', 'os', 'ipshadow', 'udhcpc-record.sh');

interface WireConfig { vm_id: string; mac: string; address: string; prefix_length: number; dns_servers: string[]; gateway: string; domain_name: string; lease_start_unix_ms: string }
interface ShadowsJson {
  vms: Array<{ vm_id: string; active_host: string; version: string; config: WireConfig }>;
  shadows: Array<{ vm_id: string; host_id: string; state: string; version: string; current_version: string; manual: boolean }>;
}

const tmp = mkdtempSync(path.join(tmpdir(), 'umbra-ipshadow-os-'));
let lab: NetnsLab;
let pki: PkiFixture;
const ns: Record<string, string> = {};
const agents: Record<string, ProcessHandle> = {};
let coordinator: ProcessHandle;
let udhcpc: ChildProcess;
let dnsmasq: ChildProcess;

const shadows = () => umbractlJson<ShadowsJson>(lab, ns.coord, pki.operator, COORD_IP, ['shadows']);
const ctl = (args: string[]) => umbractlJson<Record<string, unknown>>(lab, ns.coord, pki.operator, COORD_IP, args);
const mgmtIp = (h: string) => `${MGMT_PREFIX}.${11 + HOSTS.indexOf(h)}`;

/** `node -e` program: sends one UDP datagram (hex) to host port, from the namespace it runs in. */
const SEND_DATAGRAM = "const [h, p, x] = process.argv.slice(1); const s = require('dgram').createSocket('udp4'); s.send(Buffer.from(x, 'hex'), Number(p), h, (e) => { s.close(); process.exitCode = e ? 1 : 0; });";

/** One IpShadowService call to `host`'s agent, with the coordinator's identity unless `as` is another's. */
async function agentCall<T>(host: string, method: string, request: unknown, as = pki.coordinator): Promise<{ code: number; details: string; response?: T }> {
  const out = await lab.exec(ns.coord, process.execPath, [
    GRPC_CALL, 'umbra.agent.v1.IpShadowService', method, `${mgmtIp(host)}:7701`,
    as.ca, as.cert, as.key, 'agent', JSON.stringify(request),
  ]);
  return JSON.parse(out);
}

async function holds(host: string, address: string): Promise<boolean> {
  const out = await run('ip', ['-n', ns[host], '-j', 'addr', 'show', 'dev', 'vm0']);
  return out.includes(`"local":"${address}"`);
}

function startDnsmasq(dns: string): ChildProcess {
  return lab.spawn(ns.srv, 'dnsmasq', [
    '--no-daemon', '--conf-file=/dev/null', '--port=0', '--user=root', '--bind-interfaces', '--interface=eth0',
    '--except-interface=lo', '--dhcp-authoritative', '--no-ping', `--dhcp-leasefile=${path.join(tmp, 'leases')}`,
    `--dhcp-range=${VMNET}.50,${VMNET}.150,255.255.255.0,600`,
    `--dhcp-option=option:router,${VMNET}.1`, `--dhcp-option=option:dns-server,${dns}`,
    '--dhcp-option=option:domain-name,vm.umbra.test',
  ]);
}

if (!isRoot()) {
  test('ip shadowing in network namespaces (needs root)', (t) => {
    t.log('skipped: needs root for network namespaces, dnsmasq, packet capture and netlink');
    t.pass();
  });
} else {
  test.before(async () => {
    pki = await createPkiFixture(HOSTS);
    lab = new NetnsLab('ips');
    await lab.start();
    ns.coord = await lab.addHost('coord');
    await lab.link(ns.coord, { bridge: MGMT_BRIDGE, ifname: 'eth0', address: `${COORD_IP}/24` });
    // The VM network floods every frame (ageing 0), as a tap on a busy segment would see: every
    // host's capture sees the guest's unicast renewals too.
    await lab.ensureBridge('vmnet');
    await run('ip', ['-n', lab.switchNs, 'link', 'set', 'vmnet', 'type', 'bridge', 'ageing_time', '0']);
    ns.srv = await lab.addHost('srv');
    await lab.link(ns.srv, { bridge: 'vmnet', ifname: 'eth0', address: `${VMNET}.1/24` });
    ns.guest = await lab.addHost('guest');
    await lab.link(ns.guest, { bridge: 'vmnet', ifname: 'eth0', mac: GUEST_MAC });
    ns.cli = await lab.addHost('cli');
    await lab.link(ns.cli, { bridge: 'vmnet', ifname: 'eth0', address: `${VMNET}.9/24` });

    const coordCfg = writeYaml(path.join(pki.dir, 'coord', 'coordinator.yaml'), {
      listen: `0.0.0.0:${COORDINATOR_PORT}`,
      data_dir: path.join(pki.dir, 'coord', 'data'),
      heartbeat_interval_ms: 300,
      liveness: { suspect_after_ms: 1500, down_after_ms: 3000 },
      tls: pki.coordinator,
      // The namespaces share one machine: its load average is no host's own.
      ipshadow: { shadowing_threshold: 0.1, placement_uses_host_load: false, max_shadowed_vms: 2, shadowing_refresh_interval_ms: 1000, reconcile_interval_ms: 1000 },
    });
    coordinator = startNode(lab, ns.coord, [COORDINATOR_MAIN, '--config', coordCfg]);
    await waitForLog(coordinator, /coordinator started/, 'coordinator start');
    for (const h of HOSTS) {
      ns[h] = await lab.addHost(h);
      await lab.link(ns[h], { bridge: MGMT_BRIDGE, ifname: 'eth0', address: `${mgmtIp(h)}/24` });
      await lab.link(ns[h], { bridge: 'vmnet', ifname: 'vm0' });
      const cfg = agentConfig(path.join(pki.dir, h), h, mgmtIp(h), COORD_IP, pki.agent(h), {
        ipshadow: {
          capture_interfaces: ['vm0'],
          mode: 'address',
          interface: 'vm0',
          report_interval_ms: 1000,
          vms: h === 'hv-a' ? [{ id: 'vm1', mac: GUEST_MAC }] : [],
          ...(h === NO_DATAGRAMS ? { handover_datagrams: false } : {}),
        },
      });
      agents[h] = startNode(lab, ns[h], [AGENT_MAIN, '--config', cfg]);
    }
    for (const h of HOSTS) await waitForLog(agents[h], /agent started/, `${h} start`);
    dnsmasq = startDnsmasq(`${VMNET}.53`);
    udhcpc = lab.spawn(ns.guest, 'udhcpc', ['-f', '-i', 'eth0', '-s', UDHCPC_SCRIPT, '-x', 'hostname:vm1', '-t', '10', '-T', '1', '-A', '2'], {
      env: { ...process.env, UDHCPC_LOG: path.join(tmp, 'udhcpc.log') },
    });
  });

  test.after.always(async () => {
    await lab?.cleanup();
    pki?.cleanup();
    rmSync(tmp, { recursive: true, force: true });
  });

  const dump = (t: { log(...a: unknown[]): void }) => {
    t.log({ udhcpc: (() => { try { return readFileSync(path.join(tmp, 'udhcpc.log'), 'utf8'); } catch { return ''; } })() });
    t.log({ coordinator: coordinator.log.slice(-30) });
    for (const h of HOSTS) t.log({ [h]: agents[h].log.slice(-15) });
  };

  test.serial('the source agent reports the lease and shadows with identical config appear on N destinations', async (t) => {
    const state = await waitFor('vm1 known with two warm shadows', async () => {
      const s = await shadows();
      const vm = s.vms.find((v) => v.vm_id === 'vm1');
      const warm = s.shadows.filter((x) => x.vm_id === 'vm1' && x.state === 'warm' && x.version === vm?.version);
      return vm && warm.length === 2 ? { vm, warm } : undefined;
    }, 40000).catch((err) => (dump(t), Promise.reject(err)));
    t.is(state.vm.active_host, 'hv-a');
    t.is(state.vm.config.mac, GUEST_MAC);
    t.regex(state.vm.config.address, /^10\.79\.0\.\d+$/);
    t.is(state.vm.config.prefix_length, 24);
    t.deepEqual(state.vm.config.dns_servers, [`${VMNET}.53`]);
    t.is(state.vm.config.gateway, `${VMNET}.1`);
    t.is(state.vm.config.domain_name, 'vm.umbra.test');
    t.false(state.warm.some((w) => w.host_id === 'hv-a'), 'no shadow on the source');
    const log = readFileSync(path.join(tmp, 'udhcpc.log'), 'utf8');
    t.true(log.includes(`bound ${state.vm.config.address}`), log);
    for (const w of state.warm) {
      const r = await agentCall<{ shadows: Array<{ vm_id: string; version: string; source_host: string; config: WireConfig }> }>(w.host_id, 'ListShadows', {});
      const held = r.response!.shadows.find((s) => s.vm_id === 'vm1')!;
      t.is(held.version, state.vm.version);
      t.is(held.source_host, 'hv-a');
      t.deepEqual({ ...held.config }, { ...state.vm.config }, `config on ${w.host_id}`);
    }
  });

  test.serial('a renewal with a changed DNS option reaches every shadow with a new version', async (t) => {
    const before = (await shadows()).vms.find((v) => v.vm_id === 'vm1')!;
    await lab.stop(dnsmasq);
    dnsmasq = startDnsmasq(`${VMNET}.99`);
    await new Promise((r) => setTimeout(r, 500));
    udhcpc.kill('SIGUSR1');
    const after = await waitFor('new version with the new DNS at every shadow', async () => {
      const s = await shadows();
      const vm = s.vms.find((v) => v.vm_id === 'vm1')!;
      if (vm.config.dns_servers[0] !== `${VMNET}.99`) return undefined;
      const warm = s.shadows.filter((x) => x.vm_id === 'vm1' && x.version === vm.version);
      return warm.length === 2 ? { vm, warm } : undefined;
    }, 30000).catch((err) => (dump(t), Promise.reject(err)));
    t.true(Number(after.vm.version) > Number(before.version));
    t.is(after.vm.config.address, before.config.address);
    for (const w of after.warm) {
      const r = await agentCall<{ shadows: Array<{ vm_id: string; version: string; config: WireConfig }> }>(w.host_id, 'ListShadows', {});
      const held = r.response!.shadows.find((s) => s.vm_id === 'vm1')!;
      t.deepEqual(held.config.dns_servers, [`${VMNET}.99`], w.host_id);
      t.is(held.version, after.vm.version);
    }
  });

  test.serial('the switchover moves the address while a UDP client keeps getting answers, now from the destination', async (t) => {
    const s = await shadows();
    const vm = s.vms.find((v) => v.vm_id === 'vm1')!;
    const address = vm.config.address;
    // Nobody held the address: the reconciliation sweep activates it on the host the VM runs on.
    await waitFor('address active on hv-a', () => holds('hv-a', address), 20000).catch((err) => (dump(t), Promise.reject(err)));
    // A destination with hand-over datagrams (NO_DATAGRAMS gets its own test below).
    const dest = s.shadows.find((x) => x.vm_id === 'vm1' && x.host_id !== NO_DATAGRAMS)!.host_id;
    const responder = await buildResponder(tmp);
    for (const h of HOSTS) {
      const r = lab.spawn(ns[h], responder, [address, String(UDP_PORT), h]);
      await createInterface({ input: r.stdout! })[Symbol.asyncIterator]().next();
    }
    const prober = lab.spawn(ns.cli, await buildProber(tmp), [address, String(UDP_PORT), '1000'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out = createInterface({ input: prober.stdout! })[Symbol.asyncIterator]();
    await out.next();
    await new Promise((r) => setTimeout(r, 300));
    const res = (await ctl(['migrate', 'vm1', '--to', dest])) as { status: string; steps: Array<{ step: string; ok: boolean }>; fencing_token: string; source_host: string };
    await new Promise((r) => setTimeout(r, 300));
    prober.stdin!.write('stop\n');
    const probe = await readProberReport(out, 'switchover');
    await lab.stop(prober);
    t.log({ switchoverGapMs: probe.switchoverGapMs, maxGapMs: probe.maxGapMs, byTag: probe.byTag, steps: res.steps });
    t.is(res.status, 'SUCCEEDED');
    t.is(res.source_host, 'hv-a');
    // Both agents admit the token first (PrepareIp), then the source removes the address and hands
    // it over to the destination itself (HandOverIp, agent to agent).
    t.deepEqual(res.steps.map((x) => `${x.step}:${x.ok}`).slice(0, 4), ['prepare:true', 'prepare:true', 'deactivate:true', 'handover:true']);
    t.true(probe.byTag['hv-a'] > 0, 'answers from the source before');
    t.is(probe.lastTag, dest, 'the destination answers after');
    t.true(await holds(dest, address));
    t.false(await holds('hv-a', address));
    const after = await shadows();
    t.is(after.vms.find((v) => v.vm_id === 'vm1')!.active_host, dest);
    const events = await umbractlJson<UmbraEvent[]>(lab, ns.coord, pki.operator, COORD_IP, ['events', '--limit', '1000']);
    const sw = events.find((e) => e.kind === 'EVENT_KIND_SWITCHOVER');
    t.truthy(sw);
    t.is(sw!.attributes.status, 'SUCCEEDED');
    t.regex(sw!.attributes.steps, /deactivate@hv-a=.*ms ok, handover@/);
    // The destination took the address on the source's hand-over datagram; the call confirmed it.
    const logged = (h: string, msg: string) => agents[h].log.map((l) => { try { return JSON.parse(l) as Record<string, unknown>; } catch { return {}; } }).filter((r) => r.msg === msg && r.token === Number(res.fencing_token));
    t.is(logged(dest, 'ip activated')[0]?.handOverBy, 'datagram', JSON.stringify(logged(dest, 'ip activated')));
    t.like(logged('hv-a', 'ip deactivated')[0], { handedOver: true, handOverBy: 'datagram', handOverDatagram: 'answered' });
    t.true(events.some((e) => e.kind === 'EVENT_KIND_SHADOW_PLACED'));
    // A late command carrying an older token is refused by the old source.
    const stale = await agentCall('hv-a', 'ActivateIp', { vm_id: 'vm1', fencing_token: String(Number(res.fencing_token) - 1) });
    t.is(stale.code, 9, JSON.stringify(stale)); // FAILED_PRECONDITION
    t.regex(stale.details, /stale/);
    t.false(await holds('hv-a', address));
    // HandOverIp is for the prepared source agent only, and once: not the coordinator, not another
    // agent, not the source again with the token already used.
    const token = String(res.fencing_token);
    const other = HOSTS.find((h) => h !== 'hv-a' && h !== dest)!;
    const byCoordinator = await agentCall(dest, 'HandOverIp', { vm_id: 'vm1', fencing_token: token });
    t.is(byCoordinator.code, 7, JSON.stringify(byCoordinator)); // PERMISSION_DENIED
    const byOther = await agentCall(dest, 'HandOverIp', { vm_id: 'vm1', fencing_token: token }, pki.agent(other));
    t.is(byOther.code, 9, JSON.stringify(byOther)); // FAILED_PRECONDITION
    t.regex(byOther.details, new RegExp(`no hand-over of vm 'vm1' from '${other}'`));
    const replayed = await agentCall(dest, 'HandOverIp', { vm_id: 'vm1', fencing_token: token }, pki.agent('hv-a'));
    t.is(replayed.code, 9, JSON.stringify(replayed));
    t.true(await holds(dest, address));
    // A hand-over prepared on another host is settled by a (rollback) deactivation there: the
    // source's call arriving after it is refused and nothing is activated.
    const spare = HOSTS.find((h) => h !== dest && h !== 'hv-a')!;
    const later = String(Number(token) + 1);
    const config = { vm_id: 'vm1', mac: GUEST_MAC, address, prefix_length: 24, dns_servers: [] };
    const handoff = { source_host: 'hv-a', destination_host: spare, destination_endpoint: `${mgmtIp(spare)}:7701` };
    const prepared = await agentCall(spare, 'PrepareIp', { vm_id: 'vm1', fencing_token: later, config, handoff });
    t.is(prepared.code, 0, JSON.stringify(prepared));
    // The source's rehearsal of the hand-over (token 0) is answered without activating anything;
    // with a token, or from an agent the prepare did not name, it is refused.
    const rehearsed = await agentCall(spare, 'HandOverIp', { vm_id: 'vm1', fencing_token: '0', config, rehearsal: true }, pki.agent('hv-a'));
    t.is(rehearsed.code, 0, JSON.stringify(rehearsed));
    t.false(await holds(spare, address));
    const withToken = await agentCall(spare, 'HandOverIp', { vm_id: 'vm1', fencing_token: later, config, rehearsal: true }, pki.agent('hv-a'));
    t.is(withToken.code, 3, JSON.stringify(withToken)); // INVALID_ARGUMENT
    t.regex(withToken.details, /fencing_token/);
    const rehearsedByOther = await agentCall(spare, 'HandOverIp', { vm_id: 'vm1', fencing_token: '0', config, rehearsal: true }, pki.agent(dest));
    t.is(rehearsedByOther.code, 9, JSON.stringify(rehearsedByOther));
    t.false(await holds(spare, address));
    const settled = await agentCall(spare, 'DeactivateIp', { vm_id: 'vm1', fencing_token: later, config });
    t.is(settled.code, 0, JSON.stringify(settled));
    const late = await agentCall(spare, 'HandOverIp', { vm_id: 'vm1', fencing_token: later, config }, pki.agent('hv-a'));
    t.is(late.code, 9, JSON.stringify(late));
    t.regex(late.details, /no hand-over/);
    const lateRehearsal = await agentCall(spare, 'HandOverIp', { vm_id: 'vm1', fencing_token: '0', config, rehearsal: true }, pki.agent('hv-a'));
    t.is(lateRehearsal.code, 9, JSON.stringify(lateRehearsal));
    t.false(await holds(spare, address));

    // A hand-over datagram is acted on only under the key its switchover was prepared with: one
    // naming the prepared VM, token and source under another key is refused, and nothing moves.
    const keyed = String(Number(later) + 1);
    const datagramKey = randomBytes(32);
    const preparedKeyed = await agentCall(spare, 'PrepareIp', { vm_id: 'vm1', fencing_token: keyed, config, handoff: { ...handoff, datagram_key: datagramKey.toString('base64') } });
    t.is(preparedKeyed.code, 0, JSON.stringify(preparedKeyed));
    const badKey = await agentCall(spare, 'PrepareIp', { vm_id: 'vm1', fencing_token: keyed, config, handoff: { ...handoff, datagram_key: randomBytes(16).toString('base64') } });
    t.is(badKey.code, 3, JSON.stringify(badKey)); // INVALID_ARGUMENT
    t.regex(badKey.details, /handoff\.datagram_key/);
    const forged = encodeHandoverDatagram({ kind: 'take', vmId: 'vm1', fencingToken: Number(keyed), sourceHost: 'hv-a' }, randomBytes(32));
    await lab.exec(ns.coord, process.execPath, ['-e', SEND_DATAGRAM, mgmtIp(spare), '7701', forged.toString('hex')]);
    await waitFor('the forged datagram refused', async () => agents[spare].log.some((l) => /hand-over datagram refused/.test(l)), 5000);
    t.false(await holds(spare, address));
    t.is((await agentCall(spare, 'DeactivateIp', { vm_id: 'vm1', fencing_token: keyed, config })).code, 0);
  });

  test.serial('a destination without a current shadow is refused with the reason', async (t) => {
    const s = await shadows();
    const vm = s.vms.find((v) => v.vm_id === 'vm1')!;
    const withShadow = new Set(s.shadows.filter((x) => x.vm_id === 'vm1').map((x) => x.host_id));
    const bare = HOSTS.find((h) => h !== vm.active_host && !withShadow.has(h));
    t.truthy(bare, JSON.stringify(s));
    const out = await lab
      .exec(ns.coord, process.execPath, [
        path.join(DIST, 'coordinator', 'cli', 'umbractl.js'), '--coordinator', `${COORD_IP}:${COORDINATOR_PORT}`,
        '--ca', pki.operator.ca, '--cert', pki.operator.cert, '--key', pki.operator.key, 'migrate', 'vm1', '--to', bare!,
      ])
      .then(() => 'succeeded', (err: Error) => err.message);
    t.regex(out, /holds no shadow of vm 'vm1'/);
    t.regex(out, /FAILED_PRECONDITION/);
  });

  test.serial('a destination that never answers hand-over datagrams is handed over by the call alone, without waiting for one', async (t) => {
    // NO_DATAGRAMS receives no datagrams (as behind a firewall open for gRPC only): the source's
    // rehearsal datagrams go unanswered, so the switch sends it none and waits for nothing.
    const before = await shadows();
    const { active_host: source, config: { address } } = before.vms.find((v) => v.vm_id === 'vm1')!;
    t.not(source, NO_DATAGRAMS);
    if (!before.shadows.some((x) => x.vm_id === 'vm1' && x.host_id === NO_DATAGRAMS)) await ctl(['shadow', 'place', 'vm1', NO_DATAGRAMS]);
    await waitFor('a warm shadow on the host without datagrams', async () => {
      const s = await shadows();
      const vm = s.vms.find((v) => v.vm_id === 'vm1');
      return s.shadows.some((x) => x.vm_id === 'vm1' && x.host_id === NO_DATAGRAMS && x.state === 'warm' && x.version === vm?.version);
    }, 20000);
    // The sweep lifts the coordinator's token above those the manual calls above left on the hosts.
    await new Promise((r) => setTimeout(r, 2500));
    const res = (await ctl(['migrate', 'vm1', '--to', NO_DATAGRAMS])) as { status: string; fencing_token: string };
    t.is(res.status, 'SUCCEEDED', JSON.stringify(res));
    t.true(await holds(NO_DATAGRAMS, address));
    t.false(await holds(source, address));
    const deactivated = agents[source].log
      .map((l) => { try { return JSON.parse(l) as Record<string, unknown>; } catch { return {}; } })
      .find((r) => r.msg === 'ip deactivated' && r.token === Number(res.fencing_token));
    t.like(deactivated, { handedOver: true, handOverBy: 'call', handOverDatagram: 'skipped' }, JSON.stringify(deactivated));
    // The rehearsal's verdict (its datagrams' answers waited for in turn) may come after the switch.
    await waitFor('the source to report the unanswered datagrams', async () => agents[source].log.some((l) => /hand-over datagrams unanswered/.test(l)), 5000);
  });
}

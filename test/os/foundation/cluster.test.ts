// Coordinator and agents as real processes in separate network namespaces over mTLS:
// registration, liveness, restart, and refusals.
import test from 'ava';
import path from 'node:path';
import type { HostRecord } from '../../../shared/host-types';
import { NetnsLab, isRoot, waitFor } from '../../helpers/netns';
import { createPkiFixture, type PkiFixture } from '../../helpers/pki-fixture';
import {
  AGENT_MAIN,
  COORDINATOR_MAIN,
  GRPC_CALL,
  MGMT_BRIDGE,
  MGMT_PREFIX,
  type ProcessHandle,
  agentConfig,
  coordinatorConfig,
  startNode,
  umbractlJson,
  waitForLog,
} from '../../helpers/umbra-cluster';

const COORD_IP = `${MGMT_PREFIX}.1`;
let lab: NetnsLab;
let pki: PkiFixture;
const ns: Record<string, string> = {};
const agents: Record<string, ProcessHandle> = {};
let coordinator: ProcessHandle;
let coordConfigPath: string;

if (!isRoot()) {
  test('cluster in network namespaces (needs root)', (t) => {
    t.log('skipped: creating network namespaces needs root');
    t.pass();
  });
} else {
  test.before(async () => {
    pki = await createPkiFixture(['hv-a', 'hv-b'], 'hv-x');
    lab = new NetnsLab('f');
    await lab.start();
    const hosts: Array<[string, string]> = [['coord', COORD_IP], ['hv-a', `${MGMT_PREFIX}.11`], ['hv-b', `${MGMT_PREFIX}.12`], ['hv-x', `${MGMT_PREFIX}.13`]];
    for (const [name, ip] of hosts) {
      ns[name] = await lab.addHost(name);
      await lab.link(ns[name], { bridge: MGMT_BRIDGE, ifname: 'eth0', address: `${ip}/24` });
    }
    coordConfigPath = coordinatorConfig(path.join(pki.dir, 'coord'), pki.coordinator);
    coordinator = startNode(lab, ns.coord, [COORDINATOR_MAIN, '--config', coordConfigPath]);
    await waitForLog(coordinator, /coordinator started/, 'coordinator start');
    for (const [id, ip] of [['hv-a', `${MGMT_PREFIX}.11`], ['hv-b', `${MGMT_PREFIX}.12`]]) {
      const cfg = agentConfig(path.join(pki.dir, id), id, ip, COORD_IP, pki.agent(id));
      agents[id] = startNode(lab, ns[id], [AGENT_MAIN, '--config', cfg]);
    }
  });

  test.after.always(async () => {
    await lab?.cleanup();
    pki?.cleanup();
  });

  const hosts = () => umbractlJson<HostRecord[]>(lab, ns.coord, pki.operator, COORD_IP, ['hosts']);
  const stateOf = async (id: string) => (await hosts()).find((h) => h.facts.host_id === id)?.state;

  test.serial('agents register with their facts and heartbeat', async (t) => {
    const list = await waitFor('both agents registered', async () => {
      const l = await hosts();
      return l.length === 2 && l.every((h) => h.state === 'HOST_STATE_UP') ? l : undefined;
    });
    t.deepEqual(list.map((h) => h.facts.host_id), ['hv-a', 'hv-b']);
    const a = list[0];
    t.is(a.facts.agent_endpoint, `${MGMT_PREFIX}.11:7701`);
    t.is(a.facts.failure_domain, 'rack-hv-a');
    t.true(a.facts.capacity.cpu_threads >= 1);
    t.true(a.facts.capacity.memory_bytes > 0);
    t.true(a.facts.capacity.cpu_flags.length > 0);
    const before = a.last_heartbeat_unix_ms;
    await waitFor('a newer heartbeat', async () => ((await hosts())[0].last_heartbeat_unix_ms > before ? true : undefined));
  });

  test.serial('the agent health command reports a connected, healthy agent', async (t) => {
    const out = await lab.exec(ns['hv-a'], process.execPath, [AGENT_MAIN, 'health', '--json', '--config', path.join(pki.dir, 'hv-a', 'agent.yaml')]);
    const h = JSON.parse(out) as { healthy: boolean; report: { coordinator: { state: string }; capabilities: Array<{ name: string; available: boolean }> } };
    t.true(h.healthy, out);
    t.is(h.report.coordinator.state, 'COORDINATOR_LINK_STATE_CONNECTED');
    t.true(h.report.capabilities.find((c) => c.name === 'netlink')!.available);
  });

  test.serial('an agent with a certificate from another CA is refused', async (t) => {
    const cfg = agentConfig(path.join(pki.dir, 'hv-x'), 'hv-x', `${MGMT_PREFIX}.13`, COORD_IP, pki.foreignAgent);
    const intruder = startNode(lab, ns['hv-x'], [AGENT_MAIN, '--config', cfg]);
    await waitForLog(intruder, /coordinator link down/, 'the intruder to fail');
    t.false((await hosts()).some((h) => h.facts.host_id === 'hv-x'));
    await lab.stop(intruder.child);
  });

  test.serial('an operator certificate cannot register as an agent', async (t) => {
    const facts = { host_id: 'tester', capacity: { cpu_cores: 1, memory_bytes: '1024' }, agent_endpoint: '10.77.0.13:7701' };
    const out = await lab.exec(ns['hv-x'], process.execPath, [
      GRPC_CALL, 'umbra.coordinator.v1.CoordinatorService', 'RegisterHost', `${COORD_IP}:7700`,
      pki.operator.ca, pki.operator.cert, pki.operator.key, 'coordinator', JSON.stringify({ facts }),
    ]);
    const r = JSON.parse(out) as { code: number; details: string };
    t.is(r.code, 7, out); // PERMISSION_DENIED
    await waitForLog(coordinator, /permission denied/, 'the refusal to be logged');
  });

  test.serial('an RPC with an invalid field gets INVALID_ARGUMENT naming it', async (t) => {
    const out = await lab.exec(ns['hv-a'], process.execPath, [
      GRPC_CALL, 'umbra.coordinator.v1.CoordinatorService', 'ListHosts', `${COORD_IP}:7700`,
      pki.operator.ca, pki.operator.cert, pki.operator.key, 'coordinator', JSON.stringify({ states: ['HOST_STATE_UNSPECIFIED'] }),
    ]);
    const r = JSON.parse(out) as { code: number; details: string };
    t.is(r.code, 3, out); // INVALID_ARGUMENT
    t.regex(r.details, /^states\[0\]: /);
  });

  test.serial('heartbeat loss marks a host suspect, then down', async (t) => {
    await lab.stop(agents['hv-b'].child);
    await waitFor('hv-b suspect', async () => (await stateOf('hv-b')) === 'HOST_STATE_SUSPECT' || undefined, 10000);
    await waitFor('hv-b down', async () => (await stateOf('hv-b')) === 'HOST_STATE_DOWN' || undefined, 10000);
    t.is(await stateOf('hv-a'), 'HOST_STATE_UP');
  });

  test.serial('a restarted coordinator keeps its hosts and agents reconnect', async (t) => {
    type Ev = { sequence: string | number; kind: string; host_id: string; new_state?: string };
    const listEvents = () => umbractlJson<Ev[]>(lab, ns.coord, pki.operator, COORD_IP, ['events', '--limit', '1000']);
    const lastBefore = Math.max(0, ...(await listEvents()).map((e) => Number(e.sequence)));
    await lab.stop(coordinator.child);
    coordinator = startNode(lab, ns.coord, [COORDINATOR_MAIN, '--config', coordConfigPath]);
    await waitForLog(coordinator, /coordinator started/, 'coordinator restart');
    const list = await hosts();
    t.deepEqual(list.map((h) => h.facts.host_id), ['hv-a', 'hv-b'], 'both hosts known from the store, even the dead one');
    await waitForLog(coordinator, /host hv-a registered again/, 'hv-a to re-register');
    t.is(await stateOf('hv-a'), 'HOST_STATE_UP');
    const events = await umbractlJson<Array<{ kind: string; host_id: string }>>(lab, ns.coord, pki.operator, COORD_IP, ['events', '--limit', '1000']);
    t.true(events.some((e) => e.kind === 'EVENT_KIND_HOST_STATE_CHANGED' && e.host_id === 'hv-b'));
    // Restart grace: hv-b (stored DOWN, agent stopped) is neither swept back up nor judged again,
    // hv-a (back within its backoff) has no state change either: only its re-registration.
    const since = (await listEvents()).filter((e) => Number(e.sequence) > lastBefore);
    t.deepEqual(since.filter((e) => e.kind === 'EVENT_KIND_HOST_STATE_CHANGED'), [], JSON.stringify(since));
    t.is(await stateOf('hv-b'), 'HOST_STATE_DOWN');
  });
}

// Memory shadowing across real processes: a coordinator and three agents in their own network
// namespaces over mTLS. A process writing known patterns into a shared memfd is the "VM" on hv-a;
// the coordinator starts replication to hv-b and hv-c through its API (umbractl), the flush
// returns an epoch, and both shadow images equal the source byte for byte. Identities and request
// errors are checked on the way.
import test from 'ava';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { nativeAvailable } from '../../../agent/memory/native-binding';
import { locateGuestRam, ProcGuestMemory } from '../../../agent/memory/proc-guest-memory';
import { shadowImagePath } from '../../../agent/replication/shadow-image';
import { NetnsLab, isRoot, waitFor } from '../../helpers/netns';
import { createPkiFixture, type PkiFixture } from '../../helpers/pki-fixture';
import {
  AGENT_MAIN,
  AGENT_PORT,
  COORDINATOR_MAIN,
  COORDINATOR_PORT,
  GRPC_CALL,
  MGMT_BRIDGE,
  MGMT_PREFIX,
  UMBRACTL,
  type ProcessHandle,
  agentConfig,
  coordinatorConfig,
  startNode,
  umbractlJson,
  waitForLog,
} from '../../helpers/umbra-cluster';
import { ShmWriterProcess } from '../../os/replication/shm-writer-process';
import { firstDifferentPage } from '../../os/replication/replication-harness';

const PAGES = 4096; // 16 MiB of "guest RAM"
const VM = 'vm-mem-1';
const COORD_IP = `${MGMT_PREFIX}.1`;
const HOSTS: Array<[string, string]> = [['hv-a', `${MGMT_PREFIX}.11`], ['hv-b', `${MGMT_PREFIX}.12`], ['hv-c', `${MGMT_PREFIX}.13`]];
const STREAM_CLI = path.join(__dirname, 'replication-stream-cli.js');

let lab: NetnsLab;
let pki: PkiFixture;
let writer: ShmWriterProcess;
/** hv-c keeps its shadow images on a tmpfs (shadow_image_dir); hv-b under its data dir (the default). */
let tmpfsImageDir: string | undefined;
let coordinator: ProcessHandle;
const ns: Record<string, string> = {};
const agents: Record<string, ProcessHandle> = {};

interface Status {
  tracker: string;
  epoch: string;
  running: boolean;
  tracker_attempts: Array<{ tracker: string; ok: boolean; reason: string }>;
  shadows: Array<{ host_id: string; state: string; acked_epoch: string; lag_bytes: string; full_resends: number; resyncs: number; digest_resends: number; digest_spared_pages: string }>;
}
interface WireShadow {
  vm_id: string;
  source_host: string;
  shadow_hosts: string[];
  status: Status | null;
  status_error: string;
}
interface CallResult {
  code: number;
  details: string;
  response?: Record<string, unknown>;
}

const why = !isRoot() ? 'needs root (namespaces, pidfd_getfd, /proc/PID/map_files)' : !nativeAvailable() ? 'native addon not built' : undefined;

if (why) {
  test(`memory shadowing across agents (skipped: ${why})`, (t) => {
    t.log(`skipped: ${why}`);
    t.pass();
  });
} else {
  const ctl = <T>(args: string[]) => umbractlJson<T>(lab, ns.coord, pki.operator, COORD_IP, args);
  /** One unary call from inside `inNs` with the given identity (the helper prints code/details/response). */
  const grpcCall = async (inNs: string, who: { ca: string; cert: string; key: string }, service: string, method: string, endpoint: string, role: string, req: unknown): Promise<CallResult> =>
    JSON.parse(await lab.exec(inNs, process.execPath, [GRPC_CALL, service, method, endpoint, who.ca, who.cert, who.key, role, JSON.stringify(req)])) as CallResult;
  const memoryCall = (method: string, req: unknown) => grpcCall(ns.coord, pki.operator, 'umbra.coordinator.v1.MemoryService', method, `${COORD_IP}:${COORDINATOR_PORT}`, 'coordinator', req);
  const sourceRam = (): Buffer => {
    const mem = ProcGuestMemory.open(locateGuestRam(writer.pid, { sizeBytes: writer.sizeBytes, pathContains: 'memfd:umbra-test-ram' }));
    try {
      const buf = Buffer.alloc(writer.sizeBytes);
      mem.readPages(0, mem.pageCount, buf);
      return buf;
    } finally {
      mem.close();
    }
  };
  const imageDir = (host: string) => (host === 'hv-c' && tmpfsImageDir ? tmpfsImageDir : path.join(pki.dir, host, 'data', 'shadow'));
  const image = (host: string) => readFileSync(shadowImagePath(imageDir(host), VM));

  test.before(async () => {
    pki = await createPkiFixture(HOSTS.map(([h]) => h));
    tmpfsImageDir = mkdtempSync('/dev/shm/umbra-test-images-');
    lab = new NetnsLab('m');
    await lab.start();
    for (const [name, ip] of [['coord', COORD_IP], ...HOSTS]) {
      ns[name] = await lab.addHost(name);
      await lab.link(ns[name], { bridge: MGMT_BRIDGE, ifname: 'eth0', address: `${ip}/24` });
    }
    // The "VM" of hv-a: its RAM is a shared memfd, with the uffd preload library as the agent's QEMUs have.
    writer = await ShmWriterProcess.start(PAGES, true);
    await writer.cmd('pattern 0 1000 1');
    await writer.cmd('fill 2000 64 255');
    coordinator = startNode(lab, ns.coord, [COORDINATOR_MAIN, '--config', coordinatorConfig(path.join(pki.dir, 'coord'), pki.coordinator)]);
    await waitForLog(coordinator, /coordinator started/, 'coordinator start');
    for (const [id, ip] of HOSTS) {
      const replication =
        id === 'hv-a'
          ? { min_round_interval_ms: 20, vms: [{ id: VM, pid: writer.pid, memory_path: 'memfd:umbra-test-ram', memory_bytes: writer.sizeBytes }] }
          : { min_round_interval_ms: 20 };
      agents[id] = startNode(lab, ns[id], [AGENT_MAIN, '--config', agentConfig(path.join(pki.dir, id), id, ip, COORD_IP, pki.agent(id), { replication, ...(id === 'hv-c' ? { shadow_image_dir: tmpfsImageDir } : {}) })]);
    }
    await waitFor('three agents registered', async () => {
      const hosts = await ctl<Array<{ state: string }>>(['hosts']);
      return hosts.length === 3 && hosts.every((h) => h.state === 'HOST_STATE_UP');
    }, 20000);
  });

  test.after.always(async () => {
    writer?.close();
    await lab?.cleanup();
    pki?.cleanup();
    if (tmpfsImageDir) rmSync(tmpfsImageDir, { recursive: true, force: true });
  });

  test.serial('the coordinator starts replication to two shadows; after the writer stops, the flush epoch leaves both images equal to the source', async (t) => {
    const started = await ctl<WireShadow>(['replication', 'start', VM, '--from', 'hv-a', '--to', 'hv-b,hv-c']);
    t.deepEqual(started.shadow_hosts, ['hv-b', 'hv-c']);
    t.is(started.status?.tracker, 'uffd-wp', JSON.stringify(started.status?.tracker_attempts));

    // The guest keeps writing while rounds run.
    for (let i = 0; i < 5; i++) {
      await writer.cmd(`random 200 ${i + 7}`);
      await writer.cmd(`pattern ${100 * i} 50 ${i + 3}`);
    }
    await waitFor('both shadows streaming with an acknowledged epoch', async () => {
      const [s] = await ctl<WireShadow[]>(['replication', '--vm', VM]);
      return s.status?.shadows.length === 2 && s.status.shadows.every((l) => l.state === 'streaming' && Number(l.acked_epoch) > 0) ? s : undefined;
    }, 20000);
    await writer.cmd('fill 3000 10 0');
    await writer.cmd('poke 4095 11');

    // The writer is now quiet (as a paused guest): the flush returns the epoch both shadows hold.
    const flushed = await ctl<{ final_epoch: string; flush_ms: number }>(['replication', 'flush', VM]);
    const finalEpoch = Number(flushed.final_epoch);
    t.true(finalEpoch >= 1);
    const ram = sourceRam();
    t.is(firstDifferentPage(image('hv-b'), ram, 4096), -1, 'hv-b image equals the source');
    t.is(firstDifferentPage(image('hv-c'), ram, 4096), -1, 'hv-c image equals the source');

    const [after] = await ctl<WireShadow[]>(['replication', '--vm', VM]);
    t.false(after.status!.running, 'rounds stay stopped after a flush');
    for (const l of after.status!.shadows) {
      t.true(Number(l.acked_epoch) >= finalEpoch, `${l.host_id} acknowledged ${l.acked_epoch}`);
      t.is(l.lag_bytes, '0');
    }
    const table = await lab.exec(ns.coord, process.execPath, [
      UMBRACTL,
      '--coordinator', `${COORD_IP}:${COORDINATOR_PORT}`, '--ca', pki.operator.ca, '--cert', pki.operator.cert, '--key', pki.operator.key,
      'replication',
    ]);
    t.regex(table, /vm-mem-1\s+hv-a\s+operator\s+uffd-wp\s+\d+ \(flushed\).*hv-b\s+streaming/);
  });

  test.serial('the source agent health names the tracker in use, and the shadow agents their images', async (t) => {
    const read = async (id: string) =>
      JSON.parse(await lab.exec(ns[id], process.execPath, [AGENT_MAIN, 'health', '--json', '--config', path.join(pki.dir, id, 'agent.yaml')])) as {
        report: { capabilities: Array<{ name: string; available: boolean; detail: string }> };
      };
    const a = await read('hv-a');
    // The kernel probe also reports a 'dirty-tracking' entry (what this kernel offers); the module's says what a VM uses.
    const tracking = a.report.capabilities.filter((c) => c.name === 'dirty-tracking').map((c) => c.detail);
    t.true(tracking.some((d) => d.startsWith(`${VM}: uffd-wp (first choice)`)), tracking.join(' | '));
    const b = await read('hv-b');
    t.regex(b.report.capabilities.find((c) => c.name === 'memory-shadows')!.detail, new RegExp(`${VM}@\\d+`));
    // Where each keeps its images, and what file system that is (hv-c: a tmpfs shadow_image_dir).
    t.is((await read('hv-c')).report.capabilities.find((c) => c.name === 'shadow-image-dir')?.detail, `${tmpfsImageDir} on tmpfs (memory)`);
    t.true(b.report.capabilities.find((c) => c.name === 'shadow-image-dir')?.detail.startsWith(`${path.join(pki.dir, 'hv-b', 'data', 'shadow')} on `));
  });

  test.serial('an operator identity is refused by the peer ReplicationService; only the coordinator may drive replication on an agent', async (t) => {
    const hvB = `${MGMT_PREFIX}.12:${AGENT_PORT}`;
    const stream = JSON.parse(await lab.exec(ns.coord, process.execPath, [STREAM_CLI, hvB, pki.operator.ca, pki.operator.cert, pki.operator.key, 'agent', 'intruded-vm'])) as CallResult;
    t.is(stream.code, 7, JSON.stringify(stream)); // PERMISSION_DENIED before any message is read
    t.regex(stream.details, /operator\/.* may not call StreamMemoryDeltas/);
    const list = await grpcCall(ns.coord, pki.operator, 'umbra.agent.v1.ReplicationService', 'ListShadowImages', hvB, 'agent', {});
    t.is(list.code, 7, JSON.stringify(list));
    const hvA = `${MGMT_PREFIX}.11:${AGENT_PORT}`;
    const asOperator = await grpcCall(ns.coord, pki.operator, 'umbra.agent.v1.ReplicationControlService', 'StopReplication', hvA, 'agent', { vm_id: VM });
    t.is(asOperator.code, 7, JSON.stringify(asOperator));
    const asAgent = await grpcCall(ns['hv-b'], pki.agent('hv-b'), 'umbra.agent.v1.ReplicationControlService', 'FlushReplication', hvA, 'agent', { vm_id: VM });
    t.is(asAgent.code, 7, JSON.stringify(asAgent));
  });

  test.serial('bad requests get INVALID_ARGUMENT naming the field, unknown VMs and hosts NOT_FOUND', async (t) => {
    const noShadows = await memoryCall('StartMemoryShadow', { vm_id: VM, source_host: 'hv-a', shadow_hosts: [] });
    t.is(noShadows.code, 3, JSON.stringify(noShadows));
    t.regex(noShadows.details, /^shadow_hosts: /);
    const selfShadow = await memoryCall('StartMemoryShadow', { vm_id: VM, source_host: 'hv-a', shadow_hosts: ['hv-b', 'hv-a'] });
    t.is(selfShadow.code, 3);
    t.regex(selfShadow.details, /^shadow_hosts\[1\]: /);
    const badVm = await memoryCall('FlushMemoryShadow', { vm_id: 'bad vm id' });
    t.is(badVm.code, 3);
    t.regex(badVm.details, /^vm_id: /);
    const badTimeout = await memoryCall('FlushMemoryShadow', { vm_id: VM, timeout_ms: 900000 });
    t.is(badTimeout.code, 3);
    t.regex(badTimeout.details, /^timeout_ms: /);

    const unknownHost = await memoryCall('StartMemoryShadow', { vm_id: VM, source_host: 'hv-a', shadow_hosts: ['hv-z'] });
    t.is(unknownHost.code, 5, JSON.stringify(unknownHost));
    t.regex(unknownHost.details, /hv-z/);
    const unknownVmOnAgent = await memoryCall('StartMemoryShadow', { vm_id: 'ghost-vm', source_host: 'hv-a', shadow_hosts: ['hv-b'] });
    t.is(unknownVmOnAgent.code, 5, JSON.stringify(unknownVmOnAgent));
    t.regex(unknownVmOnAgent.details, /ghost-vm/);
    const notShadowed = await memoryCall('FlushMemoryShadow', { vm_id: 'ghost-vm' });
    t.is(notShadowed.code, 5);

    // The agent's own control API checks fields too (called with the coordinator's identity).
    const hvA = `${MGMT_PREFIX}.11:${AGENT_PORT}`;
    const badEndpoint = await grpcCall(ns.coord, pki.coordinator, 'umbra.agent.v1.ReplicationControlService', 'StartReplication', hvA, 'agent', {
      vm_id: VM,
      shadows: [{ host_id: 'hv-b', endpoint: 'nowhere' }],
    });
    t.is(badEndpoint.code, 3, JSON.stringify(badEndpoint));
    t.regex(badEndpoint.details, /^shadows\[0\]\.endpoint: /);
    const unknownOnAgent = await grpcCall(ns.coord, pki.coordinator, 'umbra.agent.v1.ReplicationControlService', 'GetReplicationStatus', hvA, 'agent', { vm_id: 'ghost-vm' });
    t.is(unknownOnAgent.code, 5, JSON.stringify(unknownOnAgent));
  });

  test.serial('ResyncShadow (coordinator identity): a shadow image written behind replication is discarded and its differing blocks sent again; the other shadow keeps streaming', async (t) => {
    const hvA = `${MGMT_PREFIX}.11:${AGENT_PORT}`;
    const control = (method: string, req: unknown) => grpcCall(ns.coord, pki.coordinator, 'umbra.agent.v1.ReplicationControlService', method, hvA, 'agent', req);
    const noHost = await control('ResyncShadow', { vm_id: VM });
    t.is(noHost.code, 3, JSON.stringify(noHost));
    t.regex(noHost.details, /^host_id: /);
    const notAShadow = await control('ResyncShadow', { vm_id: VM, host_id: 'hv-z' });
    t.is(notAShadow.code, 5, JSON.stringify(notAShadow));
    // As if a guest had run on hv-c's image: pages changed behind the stream's back.
    const file = shadowImagePath(imageDir('hv-c'), VM);
    const fd = openSync(file, 'r+');
    for (const page of [1, 2000, 4000]) writeSync(fd, Buffer.alloc(4096, 0xa5), 0, 4096, page * 4096);
    closeSync(fd);
    t.not(firstDifferentPage(image('hv-c'), sourceRam(), 4096), -1);
    const res = await control('ResyncShadow', { vm_id: VM, host_id: 'hv-c', reason: 'e2e: guest ran on it' });
    t.is(res.code, 0, JSON.stringify(res));
    const links = (res.response as { status: { shadows: Array<{ host_id: string; resyncs: number; acked_epoch: string }> } }).status.shadows;
    t.is(links.find((l) => l.host_id === 'hv-c')?.resyncs, 1);
    t.is(links.find((l) => l.host_id === 'hv-c')?.acked_epoch, '0');
    t.is(links.find((l) => l.host_id === 'hv-b')?.resyncs, 0);
    await control('ResumeReplication', { vm_id: VM }); // rounds were stopped by the flush above
    await writer.cmd('poke 10 21');
    const flushed = await ctl<{ final_epoch: string }>(['replication', 'flush', VM]);
    t.true(Number(flushed.final_epoch) >= 1);
    const ram = sourceRam();
    t.is(firstDifferentPage(image('hv-c'), ram, 4096), -1, 're-synced hv-c equals the source');
    t.is(firstDifferentPage(image('hv-b'), ram, 4096), -1, 'hv-b too');
    const [after] = await ctl<WireShadow[]>(['replication', '--vm', VM]);
    const c = after.status!.shadows.find((l) => l.host_id === 'hv-c')!;
    t.is(c.full_resends, 1, 'exactly one resend from scratch (by digest), to hv-c');
    t.is(c.digest_resends, 1, 'served from hv-c\'s digest');
    t.true(Number(c.digest_spared_pages) > 0, `spared ${c.digest_spared_pages} pages`);
    t.is(after.status!.shadows.find((l) => l.host_id === 'hv-b')!.full_resends, 0);
  });

  test.serial('stop ends replication on the source and the shadow list empties', async (t) => {
    await ctl(['replication', 'stop', VM]);
    t.deepEqual(await ctl<WireShadow[]>(['replication']), []);
    const status = await grpcCall(ns.coord, pki.coordinator, 'umbra.agent.v1.ReplicationControlService', 'GetReplicationStatus', `${MGMT_PREFIX}.11:${AGENT_PORT}`, 'agent', {});
    t.is(status.code, 0, JSON.stringify(status));
    t.deepEqual(status.response!.sources, []);
    t.deepEqual(status.response!.known_vms, [VM]);
    const events = await ctl<Array<{ kind: string; vm_id: string }>>(['events', '--limit', '1000']);
    const mine = events.filter((e) => e.vm_id === VM).map((e) => e.kind);
    t.deepEqual(mine, ['EVENT_KIND_MEMORY_SHADOW_STARTED', 'EVENT_KIND_MEMORY_SHADOW_FLUSHED', 'EVENT_KIND_MEMORY_SHADOW_FLUSHED', 'EVENT_KIND_MEMORY_SHADOW_STOPPED']);
  });
}

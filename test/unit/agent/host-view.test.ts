// The agent's health view of VMs and shadows: parts from the vm, replication and ipshadow modules
// merged per VM, the shadow-side memory lag clock, the wire (GetHealth) and the screen.
import test from 'ava';
import { serviceDefinition } from '../../../shared/proto';
import { buildHealthReport } from '../../../agent/core/health-report';
import { EpochAdvanceClock, buildHostView, type HostViewParts } from '../../../agent/core/host-view';
import { formatHealth, formatShadows, formatVms } from '../../../agent/cli/health-format';

const NOW = 1_700_000_000_000;

function parts(): HostViewParts {
  return {
    vms: [
      { vmId: 'g1', role: 'local', status: 'running', pid: 4242, memoryBytes: 512 * 1048576, incomingUri: '', relaunches: 0, taps: ['tap-g1'] },
      { vmId: 'g7', role: 'shadow', status: 'inmigrate', pid: 5151, memoryBytes: 256 * 1048576, incomingUri: 'tcp:10.77.0.12:49152', relaunches: 1, taps: ['ush0123456789'] },
    ],
    sources: [
      { vmId: 'g1', tracker: 'uffd-wp', epoch: 42, memoryBytes: 512 * 1048576, shadows: [{ id: 'hv-b', state: 'streaming', ackedEpoch: 41, lagBytes: 3 * 1048576 }, { id: 'hv-c', state: 'backoff', ackedEpoch: 30, lagBytes: 0 }] },
    ],
    images: [{ vmId: 'g7', epoch: 17, connected: true }, { vmId: 'g9', epoch: 3, connected: false, lastError: 'disk full' }],
    ipShadows: [
      { vm_id: 'g7', source_host: 'hv-a', version: 5, received_at_unix_ms: NOW - 2500, sniffed_at_unix_ms: 0, active: false },
      { vm_id: 'g8', source_host: 'hv-c', version: 2, received_at_unix_ms: NOW - 400, sniffed_at_unix_ms: NOW - 100, active: false },
    ],
    ipActive: ['g1'],
  };
}

test('local VMs carry QEMU pid, state, tap, tracker and lag per shadow; shadows merge IP, memory and QEMU', (t) => {
  const clock = new EpochAdvanceClock();
  const v = buildHostView(parts(), NOW, clock);
  t.deepEqual(v.vms, [
    {
      vm_id: 'g1', qemu_pid: 4242, run_state: 'running', taps: ['tap-g1'], memory_bytes: 512 * 1048576, memory_tracker: 'uffd-wp', memory_epoch: 42,
      replication: [{ shadow_host: 'hv-b', state: 'streaming', acked_epoch: 41, lag_bytes: 3 * 1048576 }, { shadow_host: 'hv-c', state: 'backoff', acked_epoch: 30, lag_bytes: 0 }],
    },
  ]);
  t.deepEqual(v.shadows.map((s) => s.vm_id), ['g7', 'g8', 'g9']);
  const g7 = v.shadows[0];
  t.like(g7, { source_host: 'hv-a', ip_config_held: true, ip_config_version: 5, ip_config_age_ms: 2500, ip_sniffed_age_ms: -1, memory_image_held: true, memory_applied_epoch: 17, memory_streaming: true, memory_lag_ms: -1, qemu_state: 'inmigrate', qemu_pid: 5151, qemu_relaunches: 1 });
  t.deepEqual(g7.taps, ['ush0123456789']);
  t.like(v.shadows[1], { ip_config_held: true, ip_sniffed_age_ms: 100, memory_image_held: false, qemu_state: '' });
  t.like(v.shadows[2], { ip_config_held: false, ip_config_age_ms: -1, memory_image_held: true, memory_error: 'disk full', source_host: '' });
});

test('a memory image of a VM promoted to run here is not listed as a shadow', (t) => {
  const p = parts();
  p.images.push({ vmId: 'g1', epoch: 99, connected: false });
  t.false(buildHostView(p, NOW).shadows.some((s) => s.vm_id === 'g1'));
});

test('the memory lag clock measures from the last epoch advance, not from first sight', (t) => {
  const clock = new EpochAdvanceClock();
  clock.observe([{ vmId: 'g7', epoch: 17, connected: true }], NOW - 5000);
  t.is(clock.ageMs('g7', NOW), -1, 'never seen advancing');
  clock.observe([{ vmId: 'g7', epoch: 18, connected: true }], NOW - 3000);
  clock.observe([{ vmId: 'g7', epoch: 18, connected: true }], NOW - 1000);
  t.is(clock.ageMs('g7', NOW), 3000);
  t.is(buildHostView({ ...parts(), images: [{ vmId: 'g7', epoch: 18, connected: true }] }, NOW, clock).shadows[0].memory_lag_ms, 3000);
  clock.observe([], NOW);
  t.is(clock.ageMs('g7', NOW), -1, 'forgotten once the image is gone');
});

function report() {
  const v = buildHostView(parts(), NOW);
  return buildHealthReport({
    hostId: 'hv-b', version: '1.0.0', startedAtMs: NOW - 60_000, nowMs: NOW, coordinatorEndpoint: 'c:7700',
    link: { state: 'COORDINATOR_LINK_STATE_CONNECTED', connectedSinceMs: NOW - 50_000, lastHeartbeatMs: NOW - 300, lastError: '', attempts: 1 },
    store: { path: '/var/lib/umbra/state', ok: true, error: '' }, certificate: { identity: 'agent/hv-b', notAfterMs: NOW + 90 * 86_400_000 },
    capabilities: [{ name: 'libpcap', available: true, detail: '1.10' }, { name: 'netlink', available: true, detail: 'ok' }], lastErrors: [], vms: v.vms, shadows: v.shadows,
  });
}

test('GetHealth carries the VMs and shadows over the wire with every field', (t) => {
  const def = serviceDefinition('umbra.agent.v1.AgentService').GetHealth;
  const r = report();
  const back = def.responseDeserialize(def.responseSerialize(r)) as typeof r;
  t.is(back.vms.length, 1);
  t.is(back.vms[0].qemu_pid, 4242);
  t.is(String(back.vms[0].replication[0].lag_bytes), String(3 * 1048576));
  t.is(back.vms[0].memory_tracker, 'uffd-wp');
  t.deepEqual(back.vms[0].taps, ['tap-g1']);
  t.is(back.shadows.length, 3);
  t.is(String(back.shadows[0].ip_config_version), '5');
  t.is(String(back.shadows[0].ip_sniffed_age_ms), '-1');
  t.is(back.shadows[0].qemu_incoming_uri, 'tcp:10.77.0.12:49152');
  t.is(String(back.shadows[0].memory_applied_epoch), '17');
  // The screen reads the wire form (64-bit as strings) like the in-process one.
  t.deepEqual(formatVms(back.vms), formatVms(r.vms));
  t.deepEqual(formatShadows(back.shadows), formatShadows(r.shadows));
});

test('the screen lists each VM and each shadow with its parts', (t) => {
  const out = formatHealth({ reachable: true, endpoint: '127.0.0.1:7701', report: report(), problems: [] }, NOW);
  t.regex(out, /VMs here \(1\):\n {4}g1 {2}running {2}pid 4242 {2}tap tap-g1 {2}512\.0 MiB {2}tracker uffd-wp epoch 42\n/);
  t.regex(out, / {6}-> hv-b {2}streaming {2}acked epoch 41 {2}lag 3\.0 MiB\n/);
  t.regex(out, / {6}-> hv-c {2}backoff {2}acked epoch 30 {2}lag 0 B\n/);
  t.regex(out, /shadows held here \(3\):\n {4}g7 from hv-a\n {6}ip config {3}v5, pushed 0m 2s ago, DHCP seen never\n {6}memory {6}epoch 17 applied, streaming, advanced never\n {6}qemu {8}inmigrate pid 5151 tcp:10\.77\.0\.12:49152 tap ush0123456789 relaunched 1x\n/);
  t.regex(out, / {4}g8 from hv-c\n {6}ip config {3}v2, pushed 400 ms ago, DHCP seen 100 ms ago\n {6}memory {6}no image\n {6}qemu {8}none\n/);
  t.regex(out, / {4}g9\n {6}ip config {3}none\n {6}memory {6}epoch 3 applied, no stream, advanced never, error: disk full\n/);
  const empty = formatHealth({ reachable: true, endpoint: 'x', report: { ...report(), vms: [], shadows: [] }, problems: [] }, NOW);
  t.regex(empty, /VMs here \(0\): none\n {2}shadows held here \(0\): none\n/);
});

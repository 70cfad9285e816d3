// PredictionService handlers over a real hub with fake calls: field validation (INVALID_ARGUMENT
// naming the field), NOT_FOUND for unknown VMs, agents limited to their own host, telemetry to
// predictions and ranks, policy round trip.
import test from 'ava';
import pino from 'pino';
import { status } from '@grpc/grpc-js';
import { predictionService } from '../../../coordinator/api/prediction-service';
import { PredictionEngine } from '../../../coordinator/predict/prediction-engine';
import { PredictionHub } from '../../../coordinator/predict/prediction-hub';
import type { PredictionPolicy } from '../../../coordinator/predict/prediction-policy';
import type { HostRecord } from '../../../shared/host-types';
import { EMPTY_USAGE } from '../../../shared/host-types';
import { hostFacts } from '../../fakes/host-facts';

const GIB = 2 ** 30;
type Msg = Record<string, unknown>;
type Result = { err: { code: number; details: string } | null; res?: Msg };

function record(id: string, threads = 4): HostRecord {
  const f = hostFacts(id, { failure_domain: `rack-${id}` });
  f.capacity.cpu_threads = threads;
  f.capacity.memory_bytes = 16 * GIB;
  return { facts: f, state: 'HOST_STATE_UP', registered_at_unix_ms: 0, last_heartbeat_unix_ms: 0, state_changed_at_unix_ms: 0, usage: EMPTY_USAGE };
}

function setup() {
  let now = 1_700_000_000_000;
  // A host saturates at 80% of its CPUs (3.2 of 4).
  const hub = new PredictionHub({ engine: new PredictionEngine(), useHostLoad: false, saturationFraction: 0.8, now: () => now });
  const hosts = [record('hv-a'), record('hv-b'), record('hv-c')];
  const saved: PredictionPolicy[] = [];
  const svc = predictionService({
    hub,
    hosts: () => hosts,
    setPolicy: async (p) => {
      saved.push(p);
      hub.setPolicy(p);
    },
    forecasterName: () => 'test',
    logger: pino({ level: 'silent' }),
  });
  const call = (method: string, request: Msg, identity = 'umbra://operator/alice'): Promise<Result> =>
    new Promise((resolve) => {
      const fake = {
        request,
        getAuthContext: () => ({ sslPeerCertificate: { subjectaltname: `URI:${identity}` } }),
        getPeer: () => 'test',
        on: () => undefined,
      };
      (svc.handlers[method] as (c: unknown, cb: (e: Result['err'], r?: Msg) => void) => void)(fake, (err, res) => resolve({ err, res }));
    });
  const advance = (ms: number) => (now += ms);
  return { hub, hosts, call, saved, advance, nowMs: () => now };
}

/** One report of `host` with a VM at `cpuPercent` of 2 vCPUs, 5 minutes after the previous one. */
function report(host: string, vmId: string, cpuPercent: number, timeMs: number): Msg {
  return {
    host_id: host,
    host: [{ time_unix_ms: String(timeMs), cpu_load_percent: 10, cpu_cores: 4, memory_used_bytes: String(2 * GIB), memory_total_bytes: String(16 * GIB) }],
    vms: [{ vm_id: vmId, time_unix_ms: String(timeMs), interval_ms: 5000, cpu_cores: (cpuPercent / 100) * 2, cpu_percent_of_allocation: cpuPercent, vcpus: 2, memory_bytes: String(GIB), memory_allocation_bytes: String(2 * GIB), cpu_source: 'cgroup' }],
    health: [{ time_unix_ms: String(timeMs), has_edac: false, has_thermal: true, max_temperature_c: 45 }],
    cost: { samples: 12, mean_cpu_ms: 0.6, max_cpu_ms: 1.1 },
  };
}

test('INVALID_ARGUMENT names the field', async (t) => {
  const { call } = setup();
  const cases: Array<[string, Msg, RegExp, string?]> = [
    ['GetPredictions', { vm_id: '' }, /^vm_id/],
    ['RankDestinations', { vm_id: 'x'.repeat(300) }, /^vm_id/],
    ['RankDestinations', { vm_id: 'vm1', limit: 10_001 }, /^limit/],
    ['SetPolicy', {}, /^policy/],
    ['SetPolicy', { policy: { shadowing_threshold: 1.5 } }, /^policy\.shadowing_threshold/],
    ['SetPolicy', { policy: { max_shadowed_vms: 65 } }, /^policy\.max_shadowed_vms/],
    ['SetPolicy', { policy: { shadowing_refresh_interval_ms: 50 } }, /^policy\.shadowing_refresh_interval_ms/],
    ['SetPolicy', { policy: { migration_windows: [{ start_minute: 60, end_minute: 1500 }] } }, /^policy\.migration_windows\[0\]\.end_minute/],
    ['SetPolicy', { policy: { migration_windows: [{ start_minute: 60, end_minute: 120, days: [7] }] } }, /^policy\.migration_windows\[0\]\.days\[0\]/],
    ['SetPolicy', { policy: { vm_priority: { vm1: 11 } } }, /^policy\.vm_priority\[vm1\]/],
    ['SetPolicy', { policy: { threshold: Number.NaN } }, /^policy\.threshold/],
    ['SetPolicy', { policy: { affinity_groups: [{ name: 'db tier', kind: 'AFFINITY_KIND_KEEP_APART', vm_ids: ['a'] }] } }, /^policy\.affinity_groups\[0\]\.name/],
    ['SetPolicy', { policy: { affinity_groups: [{ name: 'db', kind: 'AFFINITY_KIND_UNSPECIFIED', vm_ids: ['a'] }] } }, /^policy\.affinity_groups\[0\]\.kind/],
    ['SetPolicy', { policy: { affinity_groups: [{ name: 'db', kind: 'AFFINITY_KIND_KEEP_APART', vm_ids: [] }] } }, /^policy\.affinity_groups\[0\]\.vm_ids/],
    ['SetPolicy', { policy: { affinity_groups: [{ name: 'db', kind: 'AFFINITY_KIND_KEEP_APART', vm_ids: ['a', ''] }] } }, /^policy\.affinity_groups\[0\]\.vm_ids\[1\]/],
    [
      'SetPolicy',
      {
        policy: {
          affinity_groups: [
            { name: 'db', kind: 'AFFINITY_KIND_KEEP_APART', vm_ids: ['a'] },
            { name: 'db', kind: 'AFFINITY_KIND_KEEP_TOGETHER', vm_ids: ['b'] },
          ],
        },
      },
      /^policy\.affinity_groups\[1\]\.name: .*defined twice/,
    ],
    ['SetPolicy', { policy: { other_failure_domain: { vm_ids: ['vm1', ''] } } }, /^policy\.other_failure_domain\.vm_ids\[1\]/],
    ['SetPolicy', { policy: { other_failure_domain: 'all' } }, /^policy\.other_failure_domain: must be a message/],
    ['ReportTelemetry', { host_id: '' }, /^host_id/, 'umbra://agent/hv-a'],
    ['ReportTelemetry', { host_id: 'hv-a', vms: [{ vm_id: 'ok', vcpus: 1, gpu_models: ['A100', ''] }] }, /^vms\[0\]\.gpu_models\[1\]/, 'umbra://agent/hv-a'],
    ['ReportTelemetry', { host_id: 'hv-a', vms: [{ vm_id: 'ok', vcpus: 1, gpu_models: new Array(17).fill('A100') }] }, /^vms\[0\]\.gpu_models: at most 16 devices/, 'umbra://agent/hv-a'],
    ['ReportTelemetry', { host_id: 'hv-a', vms: [{ vm_id: 'ok', vcpus: 1 }, { vm_id: '' }] }, /^vms\[1\]\.vm_id/, 'umbra://agent/hv-a'],
    ['ReportTelemetry', { host_id: 'hv-a', host: new Array(2001).fill({}) }, /^host: at most 2000/, 'umbra://agent/hv-a'],
  ];
  for (const [method, req, field, identity] of cases) {
    const r = await call(method, req, identity);
    t.is(r.err?.code, status.INVALID_ARGUMENT, `${method} ${JSON.stringify(req).slice(0, 80)}`);
    t.regex(r.err?.details ?? '', field);
  }
});

test('NOT_FOUND for a VM nobody reported; agents report only for their own host; operators cannot report', async (t) => {
  const { call } = setup();
  for (const m of ['GetPredictions', 'RankDestinations']) {
    const r = await call(m, { vm_id: 'ghost' });
    t.is(r.err?.code, status.NOT_FOUND);
    t.regex(r.err?.details ?? '', /ghost/);
  }
  t.is((await call('ReportTelemetry', { host_id: 'hv-b' }, 'umbra://agent/hv-a')).err?.code, status.PERMISSION_DENIED);
  t.is((await call('ReportTelemetry', { host_id: 'hv-a' }, 'umbra://operator/alice')).err?.code, status.PERMISSION_DENIED);
  t.is((await call('SetPolicy', { policy: {} }, 'umbra://agent/hv-a')).err?.code, status.PERMISSION_DENIED);
});

test('malformed readings are counted and dropped, the rest is taken', async (t) => {
  const { call, nowMs } = setup();
  const req = report('hv-a', 'vm1', 40, nowMs());
  (req.vms as Msg[]).push({ vm_id: 'vm2', time_unix_ms: String(nowMs()), cpu_cores: -1, cpu_percent_of_allocation: 10, vcpus: 1 });
  (req.host as Msg[]).push({ time_unix_ms: 'soon', cpu_load_percent: 10, cpu_cores: 4 });
  req.malformed = 2;
  const r = await call('ReportTelemetry', req, 'umbra://agent/hv-a');
  t.is(r.err, null);
  t.is(r.res!.dropped, 4); // 2 from the agent, the negative VM reading, the bad host time
  t.is(r.res!.accepted, 3); // vm1, one host sample, one health snapshot
  const p = await call('GetPredictions', { vm_id: 'vm1' });
  t.is(p.err, null);
  t.is((p.res!.vm as Msg).host_id, 'hv-a');
  t.is((await call('GetPredictions', { vm_id: 'vm2' })).err?.code, status.NOT_FOUND);
});

test('a busy VM saturates its host: advice with reasons, idle host ranked first, source rejected', async (t) => {
  const { call, advance, nowMs } = setup();
  // hv-a: a 2-vCPU VM near 100% plus another at 90%; hv-b empty; hv-c a VM at 60%.
  for (let i = 0; i < 12; i++) {
    t.is((await call('ReportTelemetry', report('hv-a', 'busy', 95, nowMs()), 'umbra://agent/hv-a')).err, null);
    t.is((await call('ReportTelemetry', { ...report('hv-a', 'noisy', 90, nowMs()) }, 'umbra://agent/hv-a')).err, null);
    t.is((await call('ReportTelemetry', report('hv-c', 'steady', 60, nowMs()), 'umbra://agent/hv-c')).err, null);
    advance(5 * 60_000);
  }
  const list = await call('ListPredictions', {});
  const hosts = list.res!.hosts as Msg[];
  const a = hosts.find((h) => h.host_id === 'hv-a')!;
  const b = hosts.find((h) => h.host_id === 'hv-b')!;
  t.true((a.saturation_probability as number) > 0.5, `hv-a ${a.saturation_probability}`);
  t.is(b.saturation_probability, 0);
  t.deepEqual(a.vm_ids, ['busy', 'noisy']);
  t.is((a.sampler_cost as Msg).mean_cpu_ms, 0.6);

  const g = (await call('GetPredictions', { vm_id: 'busy' })).res!;
  const vm = g.vm as Msg;
  t.true((vm.migration_probability as number) > 0.5);
  t.is(vm.decision, 'recommend');
  t.is(vm.destination_host, 'hv-b');
  t.true((vm.reasons as string[]).some((r) => /host saturation within 30 min/.test(r)), (vm.reasons as string[]).join(' | '));
  t.true(((vm.cpu as Msg).peak_upper as number) >= ((vm.cpu as Msg).peak as number));

  const r = (await call('RankDestinations', { vm_id: 'busy', explain_rejected: true })).res!;
  const ranked = r.ranked as Array<{ host_id: string; reasons: string[]; breakdown: Array<{ name: string; value: number; reason: string }> }>;
  t.deepEqual(ranked.map((d) => d.host_id), ['hv-b', 'hv-c']);
  t.deepEqual((r.rejected as Msg[]).map((x) => [x.host_id, x.reason]), [['hv-a', 'SOURCE_HOST']]);
  const headroom = (i: number) => ranked[i].breakdown.find((c) => c.name === 'headroom')!;
  t.true(headroom(0).value > headroom(1).value);
  t.regex(headroom(0).reason, /after placement at forecast peak/);
  t.is(r.source_host, 'hv-a');

  // Limit: one shown, the rest counted as eligible.
  const one = (await call('RankDestinations', { vm_id: 'busy', limit: 1 })).res!;
  t.is((one.ranked as Msg[]).length, 1);
  t.is(one.eligible, 2);
});

test('policy: defaults, a set is validated, applied and read back', async (t) => {
  const { call, saved } = setup();
  const d = (await call('GetPolicy', {})).res!.policy as Msg;
  t.is(d.automatic, false);
  t.is(d.max_shadowed_vms, 2);
  const set = await call('SetPolicy', {
    policy: { shadowing_threshold: 0.4, max_shadowed_vms: 3, automatic: true, threshold: 0.5, migration_windows: [{ start_minute: 1320, end_minute: 360, days: [1, 2] }], vm_priority: { db1: 9 } },
  });
  t.is(set.err, null);
  t.is(saved.length, 1);
  const p = (await call('GetPolicy', {})).res!.policy as Msg;
  t.is(p.automatic, true);
  t.is(p.threshold, 0.5);
  t.is(p.shadowing_threshold, 0.4);
  t.is(p.max_shadowed_vms, 3);
  t.deepEqual(p.migration_windows, [{ start_minute: 1320, end_minute: 360, days: [1, 2] }]);
  t.deepEqual(p.vm_priority, { db1: 9 });
  t.is(p.shadowing_refresh_interval_ms, 10_000, 'zero means the default');
  t.deepEqual(p.affinity_groups, []);
});

test('affinity groups: a keep-apart peer rules a host out, a keep-together peer lifts one; read back as set', async (t) => {
  const { call, advance, nowMs } = setup();
  // db1 on hv-a; its keep-apart peer db2 on hv-b, its keep-together peer web1 on hv-c.
  for (let i = 0; i < 3; i++) {
    t.is((await call('ReportTelemetry', report('hv-a', 'db1', 30, nowMs()), 'umbra://agent/hv-a')).err, null);
    t.is((await call('ReportTelemetry', report('hv-b', 'db2', 30, nowMs()), 'umbra://agent/hv-b')).err, null);
    t.is((await call('ReportTelemetry', report('hv-c', 'web1', 30, nowMs()), 'umbra://agent/hv-c')).err, null);
    advance(5 * 60_000);
  }
  const rank = async () => (await call('RankDestinations', { vm_id: 'db1', explain_rejected: true })).res!;
  const before = await rank();
  t.deepEqual((before.ranked as Msg[]).map((d) => d.host_id).sort(), ['hv-b', 'hv-c'], 'no groups: both hosts eligible');
  const groups = [
    { name: 'db', kind: 'AFFINITY_KIND_KEEP_APART', vm_ids: ['db1', 'db2'] },
    { name: 'shop', kind: 'AFFINITY_KIND_KEEP_TOGETHER', vm_ids: ['db1', 'web1'] },
  ];
  t.is((await call('SetPolicy', { policy: { affinity_groups: groups } })).err, null);
  const after = await rank();
  t.deepEqual((after.ranked as Msg[]).map((d) => d.host_id), ['hv-c']);
  t.deepEqual((after.rejected as Msg[]).map((x) => [x.host_id, x.reason]).sort(), [['hv-a', 'SOURCE_HOST'], ['hv-b', 'ANTI_AFFINITY']]);
  const together = ((after.ranked as Msg[])[0].breakdown as Array<{ name: string; value: number }>).find((c) => c.name === 'togetherness')!;
  t.is(together.value, 1);
  t.deepEqual(((await call('GetPolicy', {})).res!.policy as Msg).affinity_groups, groups);
  // db2 itself: hv-a holds its keep-apart peer db1.
  const db2 = (await call('RankDestinations', { vm_id: 'db2', explain_rejected: true })).res!;
  t.true((db2.rejected as Msg[]).some((x) => x.host_id === 'hv-a' && x.reason === 'ANTI_AFFINITY'));
});

test('GPUs: a host whose GPUs its VMs hold is no destination for a GPU guest; other hosts are', async (t) => {
  const { call, hosts, advance, nowMs } = setup();
  const [hvA, hvB, hvC] = hosts;
  hvA.facts.capacity.gpu_models = ['NVIDIA A100'];
  hvB.facts.capacity.gpu_models = ['NVIDIA A100'];
  hvC.facts.capacity.gpu_models = ['NVIDIA A100', 'NVIDIA T4'];
  const withGpus = (req: Msg, gpus: string[]) => {
    (req.vms as Msg[])[0].gpu_models = gpus;
    return req;
  };
  for (let i = 0; i < 3; i++) {
    t.is((await call('ReportTelemetry', withGpus(report('hv-a', 'train1', 30, nowMs()), ['NVIDIA A100']), 'umbra://agent/hv-a')).err, null);
    t.is((await call('ReportTelemetry', withGpus(report('hv-b', 'train2', 30, nowMs()), ['NVIDIA A100']), 'umbra://agent/hv-b')).err, null);
    advance(5 * 60_000);
  }
  const r = (await call('RankDestinations', { vm_id: 'train1', explain_rejected: true })).res!;
  t.deepEqual((r.ranked as Msg[]).map((d) => d.host_id), ['hv-c']);
  t.deepEqual((r.rejected as Msg[]).map((x) => [x.host_id, x.reason, x.detail]).sort(), [
    ['hv-a', 'SOURCE_HOST', "host is the VM's source"],
    ['hv-b', 'GPU_MODEL', 'no free GPU NVIDIA A100'],
  ]);
  // train2 may go to hv-a only once train1 has left it: hv-a's one A100 is held.
  const r2 = (await call('RankDestinations', { vm_id: 'train2', explain_rejected: true })).res!;
  t.deepEqual((r2.ranked as Msg[]).map((d) => d.host_id), ['hv-c']);
});

test('other failure domain: the policy rules out hosts of the source domain, for listed VMs or all', async (t) => {
  const { call, hosts, advance, nowMs } = setup();
  hosts[2].facts.failure_domain = hosts[0].facts.failure_domain;
  for (let i = 0; i < 3; i++) {
    t.is((await call('ReportTelemetry', report('hv-a', 'vm1', 30, nowMs()), 'umbra://agent/hv-a')).err, null);
    t.is((await call('ReportTelemetry', report('hv-a', 'vm2', 30, nowMs()), 'umbra://agent/hv-a')).err, null);
    advance(5 * 60_000);
  }
  const ranked = async (vm: string) => {
    const r = (await call('RankDestinations', { vm_id: vm, explain_rejected: true })).res!;
    return { to: (r.ranked as Msg[]).map((d) => d.host_id).sort(), rejected: (r.rejected as Msg[]).filter((x) => x.reason === 'FAILURE_DOMAIN').map((x) => [x.host_id, x.detail]) };
  };
  t.deepEqual((await ranked('vm1')).to, ['hv-b', 'hv-c'], 'no rule: both');
  t.is((await call('SetPolicy', { policy: { other_failure_domain: { vm_ids: ['vm1'] } } })).err, null);
  t.deepEqual(await ranked('vm1'), { to: ['hv-b'], rejected: [['hv-c', 'same failure domain rack-hv-a as the source']] });
  t.deepEqual((await ranked('vm2')).to, ['hv-b', 'hv-c'], 'vm2 is not listed');
  t.deepEqual(((await call('GetPolicy', {})).res!.policy as Msg).other_failure_domain, { all_vms: false, vm_ids: ['vm1'] });
  t.is((await call('SetPolicy', { policy: { other_failure_domain: { all_vms: true } } })).err, null);
  t.deepEqual((await ranked('vm2')).to, ['hv-b']);
});

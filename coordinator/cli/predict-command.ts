// `umbractl predictions` (per-VM migration advice and per-host saturation and failure risk),
// `umbractl policy get|set` and `umbractl predict evaluate` (offline, needs no coordinator).
import { InvalidArgumentError } from '../../shared/errors';
import { callUnary } from '../../shared/grpc-client';
import { renderTable } from '../../shared/table';
import type { hostPredictionToWire, vmPredictionToWire } from '../api/prediction-service';
import { runEvaluateCommand } from '../predict/evaluate-cli';
import type { policyToWire } from '../predict/prediction-policy';
import type { CtlConnection } from './ctl-connection';
import { PREDICTION_SERVICE } from './rank-command';
import { dialCoordinatorService } from './shadows-command';

type WireVm = ReturnType<typeof vmPredictionToWire>;
type WireHost = ReturnType<typeof hostPredictionToWire>;
type WirePolicy = ReturnType<typeof policyToWire>;

const pct = (x: number) => `${(x * 100).toFixed(0)}%`;

/** `predict evaluate ...`: the argv after "predict". */
export async function runPredictCommand(argv: string[]): Promise<number> {
  if (argv[0] !== 'evaluate') {
    const help = argv[0] === '--help' || argv[0] === '-h';
    (help ? process.stdout : process.stderr).write(
      "usage: umbractl predict evaluate --traces DIR [--horizon MIN] [--folds N] [--json]\n('umbractl predict evaluate --help' for all options)\n",
    );
    return help ? 0 : 2;
  }
  return runEvaluateCommand(argv.slice(1));
}

export async function runPredictionsCommand(conn: CtlConnection, opts: { json: boolean; vm?: string }): Promise<number> {
  const client = dialCoordinatorService(conn, PREDICTION_SERVICE);
  try {
    if (opts.vm) {
      const r = await callUnary<{ vm: WireVm; host: WireHost | null }>(client, 'GetPredictions', { vm_id: opts.vm });
      if (opts.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      else process.stdout.write(formatVms([r.vm]) + '\n\n' + (r.host ? formatHosts([r.host]) : '') + '\n');
      return 0;
    }
    const r = await callUnary<{ vms: WireVm[]; hosts: WireHost[]; horizon_minutes: number; forecaster: string }>(client, 'ListPredictions', {});
    if (opts.json) {
      process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      return 0;
    }
    process.stdout.write(`horizon ${r.horizon_minutes} min, forecaster: ${r.forecaster}\n\nhosts:\n${formatHosts(r.hosts)}\n\nVMs:\n${formatVms(r.vms)}\n`);
    return 0;
  } finally {
    client.close();
  }
}

function formatHosts(hosts: WireHost[]): string {
  return renderTable(
    ['host', 'saturation', 'cpu peak', 'mem peak', 'failure risk', 'VMs', 'sample cost', 'why'],
    hosts.map((h) => [
      h.host_id,
      pct(h.saturation_probability),
      h.cpu_peak_fraction >= 0 ? pct(h.cpu_peak_fraction) : '-',
      h.memory_peak_fraction >= 0 ? pct(h.memory_peak_fraction) : '-',
      pct(h.failure_risk),
      String(h.vm_ids.length),
      h.sampler_cost ? `${h.sampler_cost.mean_cpu_ms.toFixed(2)} ms` : '-',
      h.failure_reasons.join('; '),
    ]),
  );
}

function formatVms(vms: WireVm[]): string {
  return renderTable(
    ['vm', 'host', 'p(migrate)', 'decision', 'cpu peak (80%)', 'to', 'why'],
    vms.map((v) => [
      v.vm_id,
      v.host_id,
      pct(v.migration_probability),
      v.decision,
      v.cpu ? `${v.cpu.peak.toFixed(0)}% [${v.cpu.peak_lower.toFixed(0)}-${v.cpu.peak_upper.toFixed(0)}]` : '-',
      v.destination_host || '-',
      v.reasons.join('; '),
    ]),
  );
}

export interface PolicyFlags {
  automatic?: string;
  threshold?: string;
  shadowingThreshold?: string;
  maxShadowed?: string;
  refreshMs?: string;
  defaultPriority?: string;
  window?: string[];
  priority?: string[];
  clearWindows?: boolean;
  /** NAME=keep-apart|keep-together:VM,VM...: defines (or replaces) a group. */
  group?: string[];
  removeGroup?: string[];
  /** all | none | VM,VM...: whose destinations must be outside their source's failure domain. */
  otherFailureDomain?: string;
}

const GROUP_KINDS: Readonly<Record<string, string>> = { 'keep-apart': 'AFFINITY_KIND_KEEP_APART', 'keep-together': 'AFFINITY_KIND_KEEP_TOGETHER' };

const flagNumber = (flag: string, v: string) => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(flag, `must be a number, got '${v}'`);
  return n;
};

const minuteOf = (flag: string, hhmm: string) => {
  const m = /^(\d{1,2}):(\d{2})$/.exec(hhmm);
  if (!m || Number(m[1]) > 24 || Number(m[2]) > 59) throw new InvalidArgumentError(flag, `times are HH:MM, got '${hhmm}'`);
  return Number(m[1]) * 60 + Number(m[2]);
};

/** Applies `policy set` flags to the current policy (pure). Windows: HH:MM-HH:MM[@0,6] in UTC. */
export function applyPolicyFlags(p: WirePolicy, f: PolicyFlags): WirePolicy {
  const out: WirePolicy = {
    ...p,
    vm_priority: { ...p.vm_priority },
    migration_windows: [...p.migration_windows],
    affinity_groups: [...(p.affinity_groups ?? [])],
    other_failure_domain: { all_vms: p.other_failure_domain?.all_vms ?? false, vm_ids: [...(p.other_failure_domain?.vm_ids ?? [])] },
  };
  if (f.automatic !== undefined) {
    if (f.automatic !== 'true' && f.automatic !== 'false') throw new InvalidArgumentError('--automatic', 'must be true or false');
    out.automatic = f.automatic === 'true';
  }
  if (f.threshold !== undefined) out.threshold = flagNumber('--threshold', f.threshold);
  if (f.shadowingThreshold !== undefined) out.shadowing_threshold = flagNumber('--shadowing-threshold', f.shadowingThreshold);
  if (f.maxShadowed !== undefined) out.max_shadowed_vms = flagNumber('--max-shadowed', f.maxShadowed);
  if (f.refreshMs !== undefined) out.shadowing_refresh_interval_ms = flagNumber('--refresh-ms', f.refreshMs);
  if (f.defaultPriority !== undefined) out.default_priority = flagNumber('--default-priority', f.defaultPriority);
  if (f.clearWindows) out.migration_windows = [];
  for (const w of f.window ?? []) {
    const m = /^([^-@]+)-([^@]+)(?:@([\d,]+))?$/.exec(w);
    if (!m) throw new InvalidArgumentError('--window', `must be HH:MM-HH:MM[@DAYS], got '${w}'`);
    out.migration_windows.push({ start_minute: minuteOf('--window', m[1]), end_minute: minuteOf('--window', m[2]), days: m[3] ? m[3].split(',').map(Number) : [] });
  }
  for (const pr of f.priority ?? []) {
    const i = pr.lastIndexOf('=');
    if (i <= 0) throw new InvalidArgumentError('--priority', `must be VM=N, got '${pr}'`);
    out.vm_priority[pr.slice(0, i)] = flagNumber('--priority', pr.slice(i + 1));
  }
  for (const name of f.removeGroup ?? []) {
    if (!out.affinity_groups.some((g) => g.name === name)) throw new InvalidArgumentError('--remove-group', `no group '${name}' in the policy`);
    out.affinity_groups = out.affinity_groups.filter((g) => g.name !== name);
  }
  for (const g of f.group ?? []) {
    const m = /^([^=]+)=([a-z-]+):(.+)$/.exec(g);
    const kind = m ? GROUP_KINDS[m[2]] : undefined;
    if (!m || !kind) throw new InvalidArgumentError('--group', `must be NAME=keep-apart:VM,VM or NAME=keep-together:VM,VM, got '${g}'`);
    const group = { name: m[1], kind, vm_ids: m[3].split(',').filter(Boolean) };
    const at = out.affinity_groups.findIndex((x) => x.name === group.name);
    if (at >= 0) out.affinity_groups[at] = group;
    else out.affinity_groups.push(group);
  }
  const spread = f.otherFailureDomain?.trim();
  if (spread !== undefined) {
    const vmIds = spread.split(',').map((x) => x.trim()).filter(Boolean);
    if (vmIds.length === 0) throw new InvalidArgumentError('--other-failure-domain', `must be all, none or VM,VM..., got '${f.otherFailureDomain}'`);
    out.other_failure_domain = spread === 'all' ? { all_vms: true, vm_ids: [] } : spread === 'none' ? { all_vms: false, vm_ids: [] } : { all_vms: false, vm_ids: vmIds };
  }
  return out;
}

function formatOtherFailureDomain(rule: WirePolicy['other_failure_domain'] | undefined): string {
  if (rule?.all_vms) return 'every VM';
  return rule?.vm_ids.length ? rule.vm_ids.join(', ') : 'none';
}

function formatPolicy(p: WirePolicy): string {
  const windows = p.migration_windows.map((w) => {
    const hm = (m: number) => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
    return `${hm(w.start_minute)}-${hm(w.end_minute)}${w.days.length ? `@${w.days.join(',')}` : ''}`;
  });
  return [
    `automatic            ${p.automatic}`,
    `threshold            ${p.threshold}`,
    `shadowing_threshold  ${p.shadowing_threshold}`,
    `max_shadowed_vms     ${p.max_shadowed_vms}`,
    `refresh_interval_ms  ${p.shadowing_refresh_interval_ms}`,
    `migration windows    ${windows.join(', ') || 'any time'} (UTC)`,
    `default priority     ${p.default_priority}`,
    `VM priorities        ${Object.entries(p.vm_priority).map(([k, v]) => `${k}=${v}`).join(', ') || 'none'}`,
    `other failure domain ${formatOtherFailureDomain(p.other_failure_domain)}`,
    `affinity groups      ${(p.affinity_groups ?? []).map((g) => `${g.name} (${g.kind === 'AFFINITY_KIND_KEEP_APART' ? 'keep-apart' : 'keep-together'}: ${g.vm_ids.join(', ')})`).join('; ') || 'none'}`,
  ].join('\n');
}

export async function runPolicyCommand(conn: CtlConnection, sub: string, flags: PolicyFlags, opts: { json: boolean }): Promise<number> {
  const client = dialCoordinatorService(conn, PREDICTION_SERVICE);
  try {
    let { policy } = await callUnary<{ policy: WirePolicy }>(client, 'GetPolicy', {});
    if (sub === 'set') policy = (await callUnary<{ policy: WirePolicy }>(client, 'SetPolicy', { policy: applyPolicyFlags(policy, flags) })).policy;
    process.stdout.write((opts.json ? JSON.stringify(policy, null, 2) : formatPolicy(policy)) + '\n');
    return 0;
  } finally {
    client.close();
  }
}

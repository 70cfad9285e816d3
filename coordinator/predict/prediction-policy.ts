// The operator's prediction policy (shadowing knobs, migration windows, per-VM priority, automatic
// mode and threshold): defaults, and conversion from/to the wire with every field checked by name.
// Pure logic.

import { InvalidArgumentError } from '../../shared/errors';
import type { GroupKind } from './affinity-groups';
import { DEFAULT_NET_BENEFIT_THRESHOLD, DEFAULT_PRIORITY, MAX_PRIORITY, MigrationPolicy, TimeWindow } from './migration-advisor';

export const DEFAULT_SHADOWING_THRESHOLD = 0.3;
export const DEFAULT_MAX_SHADOWED_VMS = 2;
export const DEFAULT_SHADOWING_REFRESH_INTERVAL_MS = 10_000;
const MAX_SHADOWED_VMS = 64;
const MIN_REFRESH_INTERVAL_MS = 100;
const MAX_WINDOWS = 64;
const MAX_VM_ENTRIES = 100_000;
const MINUTES_PER_DAY = 1440;
const MAX_GROUPS = 1000;
const MAX_GROUP_MEMBERS = 1000;
const GROUP_NAME = /^[A-Za-z0-9._-]{1,64}$/;
const KIND_FROM_WIRE: Readonly<Record<string, GroupKind>> = { AFFINITY_KIND_KEEP_TOGETHER: 'keep-together', AFFINITY_KIND_KEEP_APART: 'keep-apart', 1: 'keep-together', 2: 'keep-apart' };
const KIND_TO_WIRE: Readonly<Record<GroupKind, string>> = { 'keep-together': 'AFFINITY_KIND_KEEP_TOGETHER', 'keep-apart': 'AFFINITY_KIND_KEEP_APART' };

/** An application dependency label: which VMs stay apart, or together. */
export interface AffinityGroupPolicy {
  name: string;
  kind: GroupKind;
  vmIds: string[];
}

export interface PredictionPolicy {
  shadowingThreshold: number;
  maxShadowedVms: number;
  shadowingRefreshIntervalMs: number;
  migration: MigrationPolicy;
  /** Absent in policies stored before groups existed: none. */
  groups?: AffinityGroupPolicy[];
  /** VMs whose destinations must lie outside their source's failure domain (absent: none). */
  otherFailureDomain?: OtherFailureDomainPolicy;
}

export interface OtherFailureDomainPolicy {
  allVms: boolean;
  vmIds: string[];
}

export function defaultPolicy(): PredictionPolicy {
  return {
    shadowingThreshold: DEFAULT_SHADOWING_THRESHOLD,
    maxShadowedVms: DEFAULT_MAX_SHADOWED_VMS,
    shadowingRefreshIntervalMs: DEFAULT_SHADOWING_REFRESH_INTERVAL_MS,
    migration: { automatic: false, netBenefitThreshold: DEFAULT_NET_BENEFIT_THRESHOLD, allowedWindows: [], priorities: {}, defaultPriority: DEFAULT_PRIORITY },
    groups: [],
    otherFailureDomain: { allVms: false, vmIds: [] },
  };
}

function groupsFromWire(raw: unknown, field: string): AffinityGroupPolicy[] {
  const list = (raw ?? []) as unknown[];
  if (!Array.isArray(list) || list.length > MAX_GROUPS) throw new InvalidArgumentError(field, `at most ${MAX_GROUPS} groups`);
  const names = new Set<string>();
  return list.map((g, i) => {
    const f = `${field}[${i}]`;
    const m = (g ?? {}) as Msg;
    const name = typeof m.name === 'string' ? m.name : '';
    if (!GROUP_NAME.test(name)) throw new InvalidArgumentError(`${f}.name`, `must be 1-64 letters, digits, '.', '_' or '-', got '${name}'`);
    if (names.has(name)) throw new InvalidArgumentError(`${f}.name`, `group '${name}' is defined twice`);
    names.add(name);
    const kind = KIND_FROM_WIRE[String(m.kind ?? '')];
    if (!kind) throw new InvalidArgumentError(`${f}.kind`, 'must be AFFINITY_KIND_KEEP_TOGETHER or AFFINITY_KIND_KEEP_APART');
    return { name, kind, vmIds: vmIdList(`${f}.vm_ids`, m.vm_ids, { min: 1, max: MAX_GROUP_MEMBERS }) };
  });
}

type Msg = Record<string, unknown>;

/** A repeated VM id field: its count within bounds, each id 1-256 characters; duplicates dropped. */
function vmIdList(field: string, raw: unknown, count: { min: number; max: number }): string[] {
  const list = (raw ?? []) as unknown[];
  if (!Array.isArray(list) || list.length < count.min || list.length > count.max) {
    throw new InvalidArgumentError(field, count.min > 0 ? `needs ${count.min}-${count.max} VM ids` : `at most ${count.max} VM ids`);
  }
  const ids = list.map((v, k) => {
    if (typeof v !== 'string' || v.length === 0 || v.length > 256) throw new InvalidArgumentError(`${field}[${k}]`, 'VM ids are 1-256 characters');
    return v;
  });
  return [...new Set(ids)];
}

function otherFailureDomainFromWire(raw: unknown, field: string): OtherFailureDomainPolicy {
  const m = (raw ?? {}) as Msg;
  if (typeof m !== 'object') throw new InvalidArgumentError(field, 'must be a message');
  return { allVms: m.all_vms === true, vmIds: vmIdList(`${field}.vm_ids`, m.vm_ids, { min: 0, max: MAX_VM_ENTRIES }) };
}

/** proto3 numbers arrive as numbers (uint32, double) or decimal strings (64-bit). */
function num(field: string, v: unknown, opts: { min: number; max: number; integer?: boolean }): number {
  const n = typeof v === 'string' && v !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n)) throw new InvalidArgumentError(field, 'must be a number');
  if (opts.integer && !Number.isInteger(n)) throw new InvalidArgumentError(field, 'must be an integer');
  if (n < opts.min || n > opts.max) throw new InvalidArgumentError(field, `must be ${opts.min}..${opts.max}, got ${n}`);
  return n;
}

/** Parses a PredictionPolicy message; zero scalars mean "the default" where zero is not a sane value. */
export function policyFromWire(raw: unknown, field = 'policy'): PredictionPolicy {
  if (raw === null || raw === undefined || typeof raw !== 'object') throw new InvalidArgumentError(field, 'is required');
  const p = raw as Msg;
  const d = defaultPolicy();
  const windowsRaw = (p.migration_windows ?? []) as unknown[];
  if (!Array.isArray(windowsRaw) || windowsRaw.length > MAX_WINDOWS) throw new InvalidArgumentError(`${field}.migration_windows`, `at most ${MAX_WINDOWS} windows`);
  const windows: TimeWindow[] = windowsRaw.map((w, i) => {
    const f = `${field}.migration_windows[${i}]`;
    const m = (w ?? {}) as Msg;
    const startMinute = num(`${f}.start_minute`, m.start_minute ?? 0, { min: 0, max: MINUTES_PER_DAY, integer: true });
    const endMinute = num(`${f}.end_minute`, m.end_minute ?? 0, { min: 0, max: MINUTES_PER_DAY, integer: true });
    if (startMinute === endMinute) throw new InvalidArgumentError(`${f}.end_minute`, 'must differ from start_minute');
    const days = ((m.days ?? []) as unknown[]).map((x, k) => num(`${f}.days[${k}]`, x, { min: 0, max: 6, integer: true }));
    return days.length > 0 ? { startMinute, endMinute, days } : { startMinute, endMinute };
  });
  const prioRaw = (p.vm_priority ?? {}) as Msg;
  const entries = Object.entries(prioRaw);
  if (entries.length > MAX_VM_ENTRIES) throw new InvalidArgumentError(`${field}.vm_priority`, `at most ${MAX_VM_ENTRIES} entries`);
  const priorities: Record<string, number> = {};
  for (const [vm, v] of entries) {
    if (vm.length === 0 || vm.length > 256) throw new InvalidArgumentError(`${field}.vm_priority`, 'VM ids are 1-256 characters');
    priorities[vm] = num(`${field}.vm_priority[${vm}]`, v, { min: 0, max: MAX_PRIORITY, integer: true });
  }
  const refresh = num(`${field}.shadowing_refresh_interval_ms`, p.shadowing_refresh_interval_ms ?? 0, { min: 0, max: 86_400_000, integer: true });
  if (refresh !== 0 && refresh < MIN_REFRESH_INTERVAL_MS) throw new InvalidArgumentError(`${field}.shadowing_refresh_interval_ms`, `must be 0 (default) or at least ${MIN_REFRESH_INTERVAL_MS}`);
  const threshold = num(`${field}.threshold`, p.threshold ?? 0, { min: -1, max: 10 });
  const defaultPriority = num(`${field}.default_priority`, p.default_priority ?? 0, { min: 0, max: MAX_PRIORITY, integer: true });
  return {
    shadowingThreshold: num(`${field}.shadowing_threshold`, p.shadowing_threshold ?? 0, { min: 0, max: 1 }),
    maxShadowedVms: num(`${field}.max_shadowed_vms`, p.max_shadowed_vms ?? 0, { min: 0, max: MAX_SHADOWED_VMS, integer: true }),
    shadowingRefreshIntervalMs: refresh || d.shadowingRefreshIntervalMs,
    migration: {
      automatic: p.automatic === true,
      netBenefitThreshold: threshold === 0 ? d.migration.netBenefitThreshold : threshold,
      allowedWindows: windows,
      priorities,
      defaultPriority: defaultPriority === 0 ? DEFAULT_PRIORITY : defaultPriority,
    },
    groups: groupsFromWire(p.affinity_groups, `${field}.affinity_groups`),
    otherFailureDomain: otherFailureDomainFromWire(p.other_failure_domain, `${field}.other_failure_domain`),
  };
}

export function policyToWire(p: PredictionPolicy) {
  return {
    shadowing_threshold: p.shadowingThreshold,
    max_shadowed_vms: p.maxShadowedVms,
    shadowing_refresh_interval_ms: p.shadowingRefreshIntervalMs,
    migration_windows: (p.migration.allowedWindows ?? []).map((w) => ({ start_minute: w.startMinute, end_minute: w.endMinute, days: w.days ?? [] })),
    vm_priority: { ...(p.migration.priorities ?? {}) },
    default_priority: p.migration.defaultPriority ?? DEFAULT_PRIORITY,
    automatic: p.migration.automatic,
    threshold: p.migration.netBenefitThreshold ?? DEFAULT_NET_BENEFIT_THRESHOLD,
    affinity_groups: (p.groups ?? []).map((g) => ({ name: g.name, kind: KIND_TO_WIRE[g.kind], vm_ids: [...g.vmIds] })),
    other_failure_domain: { all_vms: p.otherFailureDomain?.allVms ?? false, vm_ids: [...(p.otherFailureDomain?.vmIds ?? [])] },
  };
}

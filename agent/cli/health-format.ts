// Renders the agent's health report as one screen for people.
import type { HealthReport } from '../core/health-report';

export interface HealthView {
  reachable: boolean;
  endpoint: string;
  report?: HealthReport;
  /** Facilities probed by the CLI itself when the agent could not be asked. */
  localCapabilities?: Array<{ name: string; available: boolean; detail: string }>;
  problems: string[];
}

function duration(ms: number): string {
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  return d > 0 ? `${d}d ${h}h` : h > 0 ? `${h}h ${m}m` : `${m}m ${s % 60}s`;
}

function ago(unixMs: string | number, nowMs: number): string {
  const t = Number(unixMs);
  return t > 0 ? `${((nowMs - t) / 1000).toFixed(1)} s ago` : 'never';
}

/** 64-bit fields arrive as decimal strings over gRPC (longs: String); numbers in-process. */
const n = (v: unknown): number => Number(v ?? 0);

function bytes(v: unknown): string {
  const b = n(v);
  return b >= 1073741824 ? `${(b / 1073741824).toFixed(1)} GiB` : b >= 1048576 ? `${(b / 1048576).toFixed(1)} MiB` : b >= 1024 ? `${(b / 1024).toFixed(1)} KiB` : `${b} B`;
}

function ageText(ms: unknown): string {
  const v = n(ms);
  return v < 0 ? 'never' : v < 1000 ? `${v} ms ago` : `${duration(v)} ago`;
}

type VmRow = HealthReport['vms'][number];
type ShadowRow = HealthReport['shadows'][number];

export function formatVms(vms: readonly VmRow[]): string[] {
  const lines = [`  VMs here (${vms.length}):${vms.length === 0 ? ' none' : ''}`];
  for (const v of vms) {
    const tracker = v.memory_tracker ? `tracker ${v.memory_tracker} epoch ${n(v.memory_epoch)}` : 'not replicating';
    lines.push(`    ${v.vm_id}  ${v.run_state}${n(v.qemu_pid) ? `  pid ${n(v.qemu_pid)}` : ''}  tap ${v.taps.join(',') || '-'}  ${bytes(v.memory_bytes)}  ${tracker}`);
    for (const r of v.replication) lines.push(`      -> ${r.shadow_host}  ${r.state}  acked epoch ${n(r.acked_epoch)}  lag ${bytes(r.lag_bytes)}`);
  }
  return lines;
}

export function formatShadows(shadows: readonly ShadowRow[]): string[] {
  const lines = [`  shadows held here (${shadows.length}):${shadows.length === 0 ? ' none' : ''}`];
  for (const s of shadows) {
    lines.push(`    ${s.vm_id}${s.source_host ? ` from ${s.source_host}` : ''}${s.ip_active ? '  (IP ACTIVE here)' : ''}`);
    lines.push(
      s.ip_config_held
        ? `      ip config   v${n(s.ip_config_version)}, pushed ${ageText(s.ip_config_age_ms)}, DHCP seen ${ageText(s.ip_sniffed_age_ms)}`
        : '      ip config   none',
    );
    lines.push(
      s.memory_image_held
        ? `      memory      epoch ${n(s.memory_applied_epoch)} applied, ${s.memory_streaming ? 'streaming' : 'no stream'}, advanced ${ageText(s.memory_lag_ms)}${s.memory_error ? `, error: ${s.memory_error}` : ''}`
        : '      memory      no image',
    );
    lines.push(
      s.qemu_state
        ? `      qemu        ${s.qemu_state}${n(s.qemu_pid) ? ` pid ${n(s.qemu_pid)}` : ''}${s.qemu_incoming_uri ? ` ${s.qemu_incoming_uri}` : ''}${s.taps.length ? ` tap ${s.taps.join(',')}` : ''}${n(s.qemu_relaunches) ? ` relaunched ${n(s.qemu_relaunches)}x` : ''}`
        : '      qemu        none',
    );
  }
  return lines;
}

export function formatHealth(v: HealthView, nowMs = Date.now()): string {
  const r = v.report;
  const healthy = v.reachable && r?.healthy === true;
  const lines: string[] = [];
  lines.push(`umbra-agent health${r ? `: ${r.host_id}` : ''}  ${healthy ? 'HEALTHY' : 'UNHEALTHY'}`);
  const row = (k: string, val: string) => lines.push(`  ${k.padEnd(15)} ${val}`);
  row('agent', v.reachable && r ? `reachable at ${v.endpoint}, version ${r.version}, up ${duration(Number(r.uptime_ms))}` : `not reachable at ${v.endpoint}`);
  if (r) {
    const c = r.coordinator;
    const state = c.state.replace('COORDINATOR_LINK_STATE_', '').toLowerCase();
    row('coordinator', `${state} ${c.endpoint}${state === 'connected' ? `, last heartbeat ${ago(c.last_heartbeat_unix_ms, nowMs)}` : c.last_error ? `: ${c.last_error}` : ''}`);
    row('store', `${r.store.path} ${r.store.ok ? 'ok' : `FAILED: ${r.store.error}`}`);
    row('certificate', `${r.certificate.identity}, expires ${new Date(Number(r.certificate.not_after_unix_ms)).toISOString().slice(0, 10)} (${r.certificate.days_left} days)`);
  }
  const caps = r?.capabilities ?? v.localCapabilities ?? [];
  for (const c of caps) row(c.name, `${c.available ? 'yes' : 'NO '}  ${c.detail}`);
  if (r) lines.push(...formatVms(r.vms ?? []), ...formatShadows(r.shadows ?? []));
  const problems = [...v.problems, ...(r?.problems ?? [])];
  if (problems.length > 0) {
    lines.push('  problems:');
    for (const p of problems) lines.push(`    - ${p}`);
  }
  if (r && r.last_errors.length > 0) {
    lines.push('  recent errors:');
    for (const e of r.last_errors) lines.push(`    ${e}`);
  }
  return lines.join('\n') + '\n';
}

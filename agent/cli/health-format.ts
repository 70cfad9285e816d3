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

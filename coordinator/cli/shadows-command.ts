// `umbractl shadows` (each shadow with its version and freshness) and `umbractl shadow place|remove`.
import { callUnary, dial, type GenericClient } from '../../shared/grpc-client';
import { channelCredentials, loadTlsMaterial } from '../../shared/tls';
import type { shadowEntryToWire } from '../api/shadow-service';
import type { CtlConnection } from './ctl-connection';

const SHADOW_SERVICE = 'umbra.coordinator.v1.ShadowService';

/** Dials one of the coordinator's services with the operator identity of `conn`. */
export function dialCoordinatorService(conn: CtlConnection, service: string): GenericClient {
  const tls = loadTlsMaterial(conn.tls, 'umbractl');
  return dial(service, conn.endpoint, channelCredentials(tls, { role: 'coordinator' }));
}

type WireShadow = ReturnType<typeof shadowEntryToWire>;

function age(ms: number, nowMs: number): string {
  if (ms === 0) return 'never';
  const s = Math.max(0, Math.round((nowMs - ms) / 1000));
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
}

export async function runShadowsCommand(conn: CtlConnection, opts: { json: boolean; vm?: string }): Promise<number> {
  const client = dialCoordinatorService(conn, SHADOW_SERVICE);
  const [{ shadows }, { vms }] = await Promise.all([
    callUnary<{ shadows: WireShadow[] }>(client, 'ListShadows', { vm_id: opts.vm ?? '' }),
    callUnary<{ vms: Array<{ vm_id: string; active_host: string; config: { address: string } }> }>(client, 'ListVms', {}),
  ]);
  if (opts.json) {
    process.stdout.write(JSON.stringify({ vms, shadows }, null, 2) + '\n');
    return 0;
  }
  const now = Date.now();
  const rows = [['VM', 'ADDRESS', 'ACTIVE ON', 'SHADOW ON', 'STATE', 'VERSION', 'CONFIRMED', 'HOW', 'LAST ERROR']];
  for (const s of shadows) {
    const vm = vms.find((v) => v.vm_id === s.vm_id);
    const current = s.version === s.current_version;
    rows.push([
      s.vm_id,
      vm?.config.address ?? '',
      vm?.active_host ?? '',
      s.host_id,
      s.state,
      `${s.version}/${s.current_version}${current ? '' : ' (behind)'}`,
      age(Number(s.confirmed_at_unix_ms), now),
      s.manual ? 'manual' : `auto ${s.score.toFixed(2)}`,
      s.last_error,
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) process.stdout.write(r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd() + '\n');
  if (shadows.length === 0) process.stdout.write(`(no shadows; ${vms.length} VM(s) known)\n`);
  return 0;
}

export async function runShadowCommand(conn: CtlConnection, sub: string, vmId: string, hostId: string, opts: { json: boolean }): Promise<number> {
  const client = dialCoordinatorService(conn, SHADOW_SERVICE);
  if (sub === 'place') {
    const { shadow } = await callUnary<{ shadow: WireShadow }>(client, 'PlaceShadow', { vm_id: vmId, host_id: hostId }, 15000);
    process.stdout.write(opts.json ? JSON.stringify(shadow, null, 2) + '\n' : `shadow of ${vmId} on ${hostId}: ${shadow.state}, version ${shadow.version}/${shadow.current_version}${shadow.last_error ? ` (${shadow.last_error})` : ''}\n`);
    return 0;
  }
  await callUnary(client, 'RemoveShadow', { vm_id: vmId, host_id: hostId }, 15000);
  process.stdout.write(opts.json ? '{}\n' : `shadow of ${vmId} on ${hostId} removed\n`);
  return 0;
}

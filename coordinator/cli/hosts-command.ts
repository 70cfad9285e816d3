// `umbractl hosts` and `umbractl host ID`: the cluster's hosts as a table or JSON.
import { callUnary, type GenericClient } from '../../shared/grpc-client';
import { InvalidArgumentError } from '../../shared/errors';
import type { HostRecord } from '../../shared/host-types';
import { formatBytes, renderTable } from '../../shared/table';
import { hostFromWire, type hostToWire } from '../api/host-messages';

const STATES: Record<string, string> = { up: 'HOST_STATE_UP', suspect: 'HOST_STATE_SUSPECT', down: 'HOST_STATE_DOWN' };

function ago(ms: number, now: number): string {
  if (ms <= 0) return '-';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
}

/** A host as umbractl shows it: the record, and whether the coordinator awaits its first contact since a restart. */
export type ListedHost = HostRecord & { awaiting_contact: boolean };

export function listedHostFromWire(w: ReturnType<typeof hostToWire>): ListedHost {
  return { ...hostFromWire(w), awaiting_contact: w.awaiting_contact === true };
}

export function hostsTable(hosts: ListedHost[], now = Date.now()): string {
  return renderTable(
    ['HOST', 'STATE', 'DOMAIN', 'ENDPOINT', 'CPUS', 'MEMORY', 'LOAD', 'LAST SEEN', 'CPU MODEL'],
    hosts.map((h) => [
      h.facts.host_id,
      // The stored state of a host not heard from since the coordinator restarted is no verdict yet.
      `${h.state.replace('HOST_STATE_', '').toLowerCase()}${h.awaiting_contact ? ' (awaiting contact)' : ''}`,
      h.facts.failure_domain,
      h.facts.agent_endpoint,
      String(h.facts.capacity.cpu_threads),
      formatBytes(h.facts.capacity.memory_bytes),
      `${Math.round(h.usage.cpu_load_ratio * 100)}%`,
      ago(h.last_heartbeat_unix_ms, now),
      h.facts.capacity.cpu_model,
    ]),
  );
}

export async function runHostsCommand(client: GenericClient, opts: { json: boolean; state?: string }): Promise<number> {
  const states: string[] = [];
  if (opts.state) {
    for (const s of opts.state.split(',')) {
      const st = STATES[s.trim().toLowerCase()];
      if (!st) throw new InvalidArgumentError('--state', `must be up, suspect or down, got '${s}'`);
      states.push(st);
    }
  }
  // Scripts get every fact; the table needs only the basic view.
  const view = opts.json ? 'HOST_VIEW_FULL' : 'HOST_VIEW_BASIC';
  const res = await callUnary<{ hosts: Array<ReturnType<typeof hostToWire>> }>(client, 'ListHosts', { states, view });
  const hosts = res.hosts.map(listedHostFromWire);
  process.stdout.write(opts.json ? JSON.stringify(hosts, null, 2) + '\n' : hosts.length ? hostsTable(hosts) : 'no hosts registered\n');
  return 0;
}

export async function runHostCommand(client: GenericClient, hostId: string, opts: { json: boolean }): Promise<number> {
  const res = await callUnary<{ host: ReturnType<typeof hostToWire> }>(client, 'GetHost', { host_id: hostId });
  const host = listedHostFromWire(res.host);
  if (opts.json) {
    process.stdout.write(JSON.stringify(host, null, 2) + '\n');
  } else {
    const c = host.facts.capacity;
    process.stdout.write(hostsTable([host]));
    process.stdout.write(`\nkernel ${c.kernel} ${c.arch}; ${c.cpu_cores} cores / ${c.cpu_threads} threads; ${c.cpu_flags.length} CPU flags; GPUs: ${c.gpu_models.join(', ') || 'none'}\n`);
    for (const n of c.nics) process.stdout.write(`nic ${n.name} ${n.mac} ${n.addresses.join(' ')}${n.speed_mbps ? ` ${n.speed_mbps} Mb/s` : ''}\n`);
  }
  return 0;
}

export async function runRemoveHostCommand(client: GenericClient, hostId: string): Promise<number> {
  await callUnary(client, 'RemoveHost', { host_id: hostId });
  process.stdout.write(`removed host ${hostId}\n`);
  return 0;
}

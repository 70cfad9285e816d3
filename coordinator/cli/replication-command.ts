// `umbractl replication` (a table per VM and shadow: tracker, epoch, acknowledged epoch, lag, dirty
// rate), `umbractl replication start VM --from HOST --to HOST[,HOST]`, `stop VM`, `flush VM`.
import { callUnary } from '../../shared/grpc-client';
import { InvalidArgumentError } from '../../shared/errors';
import type { AgentSourceStatus } from '../memory/memory-agent-port';
import type { CtlConnection } from './ctl-connection';
import { dialCoordinatorService } from './shadows-command';

const MEMORY_SERVICE = 'umbra.coordinator.v1.MemoryService';
/** Starting opens the guest's RAM on the source agent; flushes wait for every shadow. */
const START_DEADLINE_MS = 20_000;
const FLUSH_DEADLINE_MS = 40_000;

interface WireMemoryShadow {
  vm_id: string;
  source_host: string;
  shadow_hosts: string[];
  started_at_unix_ms: string;
  status: AgentSourceStatus | null;
  status_error: string;
  last_final_epoch: string;
  automatic?: boolean;
}

export interface ReplicationCommandArgs {
  sub?: string;
  vm?: string;
  from?: string;
  to?: string;
  json: boolean;
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1048576) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1073741824) return `${(n / 1048576).toFixed(1)} MiB`;
  return `${(n / 1073741824).toFixed(2)} GiB`;
}

/** Rows of the table: one per (VM, shadow host), VM columns repeated for readability in grep. */
export function replicationRows(shadows: WireMemoryShadow[]): string[][] {
  const rows = [['VM', 'SOURCE', 'HOW', 'TRACKER', 'EPOCH', 'RATE', 'INTERVAL', 'SHADOW', 'STATE', 'ACKED', 'LAG', 'ERROR']];
  for (const s of shadows) {
    const st = s.status;
    const vmCols = [
      s.vm_id,
      s.source_host,
      s.automatic ? 'auto' : 'operator',
      st?.tracker ?? '-',
      st ? `${st.epoch}${st.running ? '' : ' (flushed)'}` : '-',
      st ? `${bytes(st.dirty_rate_bytes_per_s)}/s` : '-',
      st ? `${st.round_interval_ms} ms` : '-',
    ];
    for (const host of s.shadow_hosts) {
      const l = st?.shadows.find((x) => x.host_id === host);
      rows.push([...vmCols, host, l?.state ?? '-', l?.acked_epoch ?? '-', l ? bytes(Number(l.lag_bytes)) : '-', l?.last_error || s.status_error]);
    }
  }
  return rows;
}

function printTable(rows: string[][]): void {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) process.stdout.write(r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd() + '\n');
}

export async function runReplicationCommand(conn: CtlConnection, a: ReplicationCommandArgs): Promise<number> {
  const client = dialCoordinatorService(conn, MEMORY_SERVICE);
  switch (a.sub ?? 'list') {
    case 'list': {
      const { shadows } = await callUnary<{ shadows: WireMemoryShadow[] }>(client, 'ListMemoryShadows', { vm_id: a.vm ?? '' });
      if (a.json) process.stdout.write(JSON.stringify(shadows, null, 2) + '\n');
      else if (shadows.length === 0) process.stdout.write('(no memory shadows)\n');
      else printTable(replicationRows(shadows));
      return 0;
    }
    case 'start': {
      if (!a.vm) throw new InvalidArgumentError('VM', 'replication start needs a VM id');
      if (!a.from) throw new InvalidArgumentError('--from', 'names the source host');
      if (!a.to) throw new InvalidArgumentError('--to', 'names the shadow hosts, comma-separated');
      const hosts = a.to.split(',').map((h) => h.trim()).filter(Boolean);
      const { shadow } = await callUnary<{ shadow: WireMemoryShadow }>(client, 'StartMemoryShadow', { vm_id: a.vm, source_host: a.from, shadow_hosts: hosts }, START_DEADLINE_MS);
      if (a.json) process.stdout.write(JSON.stringify(shadow, null, 2) + '\n');
      else process.stdout.write(`replicating ${a.vm} from ${a.from} to ${hosts.join(', ')} (tracker ${shadow.status?.tracker ?? 'unknown'})\n`);
      return 0;
    }
    case 'stop': {
      if (!a.vm) throw new InvalidArgumentError('VM', 'replication stop needs a VM id');
      await callUnary(client, 'StopMemoryShadow', { vm_id: a.vm });
      process.stdout.write(a.json ? '{}\n' : `replication of ${a.vm} stopped\n`);
      return 0;
    }
    case 'flush': {
      if (!a.vm) throw new InvalidArgumentError('VM', 'replication flush needs a VM id');
      const r = await callUnary<{ final_epoch: string; flush_ms: number }>(client, 'FlushMemoryShadow', { vm_id: a.vm }, FLUSH_DEADLINE_MS);
      process.stdout.write(a.json ? JSON.stringify(r) + '\n' : `${a.vm}: final epoch ${r.final_epoch} acknowledged by every shadow in ${r.flush_ms.toFixed(1)} ms\n`);
      return 0;
    }
    default:
      throw new InvalidArgumentError('replication', `unknown subcommand '${a.sub}' (list, start, stop, flush)`);
  }
}

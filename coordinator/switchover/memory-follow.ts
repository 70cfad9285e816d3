// Memory shadows follow IP shadow placement: a VM's RAM is replicated from the host its address is
// active on to the hosts holding its IP shadows, so a shadow host holds both halves and the VM
// keeps a warm shadow after every switchover without an operator restarting replication. Only
// the replications this planner started ("auto") are reshaped or stopped; one an operator started
// is left as it is. Pure: the caller carries the actions out (and checks the VM is a QEMU guest).

export interface IpPlacement {
  vmId: string;
  /** Where the VM's address is active (where it runs). */
  activeHost: string;
  /** Hosts holding an IP shadow of it. */
  shadowHosts: readonly string[];
}

export interface FollowedRecord {
  vm_id: string;
  source_host: string;
  shadow_hosts: readonly string[];
  /** Started by this planner (absent: by an operator). */
  auto?: boolean;
}

export type FollowAction = { kind: 'start'; vmId: string; source: string; shadows: string[] } | { kind: 'stop'; vmId: string; why: string };

const sameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x) => b.includes(x));

/** `stoppedByOperator`: VMs whose replication an operator stopped; none is started again here. */
export function planMemoryFollow(placements: readonly IpPlacement[], records: readonly FollowedRecord[], stoppedByOperator: ReadonlySet<string> = new Set()): FollowAction[] {
  const byVm = new Map(records.map((r) => [r.vm_id, r]));
  const actions: FollowAction[] = [];
  const placed = new Set<string>();
  for (const p of placements) {
    const shadows = [...new Set(p.shadowHosts)].filter((h) => h !== p.activeHost).sort();
    if (shadows.length === 0) continue;
    placed.add(p.vmId);
    const rec = byVm.get(p.vmId);
    if (rec && !rec.auto) continue;
    if (!rec && stoppedByOperator.has(p.vmId)) continue;
    if (rec && rec.source_host === p.activeHost && sameSet(rec.shadow_hosts, shadows)) continue;
    actions.push({ kind: 'start', vmId: p.vmId, source: p.activeHost, shadows });
  }
  for (const r of records) {
    if (r.auto && !placed.has(r.vm_id)) actions.push({ kind: 'stop', vmId: r.vm_id, why: 'no IP shadow of it is placed any more' });
  }
  return actions;
}

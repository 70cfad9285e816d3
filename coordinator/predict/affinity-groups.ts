// Application dependency labels: keep-together and keep-apart groups of VMs, and the labels a
// host carries for the ranker's anti-affinity check. Pure logic.

import { InvalidArgumentError } from '../../shared/errors';

export type GroupKind = 'keep-together' | 'keep-apart';

export class AffinityGroups {
  private readonly groups = new Map<string, { kind: GroupKind; members: Set<string> }>();

  define(name: string, kind: GroupKind, vmIds: Iterable<string>): void {
    if (!name) throw new InvalidArgumentError('group.name', 'must not be empty');
    const existing = this.groups.get(name);
    if (existing && existing.kind !== kind) throw new InvalidArgumentError('group.kind', `group '${name}' is already ${existing.kind}`);
    this.groups.set(name, { kind, members: new Set(vmIds) });
  }

  remove(name: string): void {
    this.groups.delete(name);
  }

  private of(vmId: string, kind: GroupKind): string[] {
    const out: string[] = [];
    for (const [name, g] of this.groups) if (g.kind === kind && g.members.has(vmId)) out.push(name);
    return out;
  }

  keepApartOf(vmId: string): string[] {
    return this.of(vmId, 'keep-apart');
  }

  keepTogetherOf(vmId: string): string[] {
    return this.of(vmId, 'keep-together');
  }

  /** Labels of a host: every group of every VM it holds, except `excludeVmId` (the VM being placed). */
  hostLabels(vmIdsOnHost: Iterable<string>, excludeVmId?: string): string[] {
    const out = new Set<string>();
    for (const vm of vmIdsOnHost) {
      if (vm === excludeVmId) continue;
      for (const [name, g] of this.groups) if (g.members.has(vm)) out.add(name);
    }
    return [...out];
  }
}

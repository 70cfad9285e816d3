// Where a VM's warm shadows are, for the ranker's warm-shadow term and migration cost. A VM whose
// memory is replicated is warm on the shadow hosts of the replication from the host it runs on
// (not on one whose image waits for a full copy, nor on any host when the replication still
// starts from a host the VM left); a VM without memory replication is warm where its IP shadow is
// current. Pure: the shadow state comes in as functions.

export interface WarmShadowSources {
  /** The host the VM's address is active on; undefined for a VM the coordinator does not know. */
  activeHost(vmId: string): string | undefined;
  memoryShadow(vmId: string): { source_host: string; shadow_hosts: readonly string[]; resync_pending?: readonly string[] } | undefined;
  hostIds(): readonly string[];
  /** Whether `hostId` holds a current IP shadow of the VM. */
  ipShadowCurrent(vmId: string, hostId: string): boolean;
}

export function warmShadowHosts(s: WarmShadowSources, vmId: string): string[] {
  const active = s.activeHost(vmId);
  if (active === undefined) return [];
  const memory = s.memoryShadow(vmId);
  if (memory) {
    if (memory.source_host !== active) return [];
    const pending = new Set(memory.resync_pending ?? []);
    return memory.shadow_hosts.filter((h) => h !== active && !pending.has(h));
  }
  return s.hostIds().filter((h) => h !== active && s.ipShadowCurrent(vmId, h));
}

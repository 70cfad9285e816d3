// The profiler's view of the vm module: a VM it knows runs its guest here only as a local QEMU in
// the running state (not a paused source kept for rollback, not a shadow waiting for its state).
// VMs the vm module does not know (profiled by pid file only) are taken as running here.
import { AGENT_MODULE_NAMES, moduleApi, type RunningAgentModule } from '../agent-module';

interface VmListing {
  vmId: string;
  role: 'local' | 'shadow';
  status: string;
}
interface VmModuleHost {
  host: { list(): Promise<VmListing[]> };
}

export function runsHereFrom(listing: readonly VmListing[]): (vmId: string) => boolean {
  const known = new Map<string, boolean>();
  for (const v of listing) known.set(v.vmId, (known.get(v.vmId) ?? false) || (v.role === 'local' && v.status === 'running'));
  return (vmId) => known.get(vmId) ?? true;
}

export async function guestsRunningHere(modules: ReadonlyMap<string, RunningAgentModule>): Promise<(vmId: string) => boolean> {
  const vm = moduleApi<VmModuleHost>(modules, AGENT_MODULE_NAMES.vm, 'host');
  if (typeof vm?.host.list !== 'function') return () => true;
  return runsHereFrom(await vm.host.list());
}

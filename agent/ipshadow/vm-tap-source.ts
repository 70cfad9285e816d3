// ipshadow's view of the vm module: which tap the QEMU of a VM uses on this host (a shadow QEMU
// launched ahead of a switchover has its own tap). Looked up at call time in the running modules,
// so the order the modules start in does not matter; no vm module = no answer (static config).
import { AGENT_MODULE_NAMES, moduleApi, type RunningAgentModule } from '../agent-module';
import type { VmTapLookup } from './activation-spec-builder';

interface VmTapProvider {
  tapOf(vmId: string, mac: string): string | undefined;
}

export function vmTapLookup(modules: ReadonlyMap<string, RunningAgentModule>): VmTapLookup {
  return (vmId, mac) => moduleApi<VmTapProvider>(modules, AGENT_MODULE_NAMES.vm, 'tapOf')?.tapOf(vmId, mac);
}

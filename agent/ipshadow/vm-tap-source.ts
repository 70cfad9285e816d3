// ipshadow's view of the vm module: which tap the QEMU of a VM uses on this host (a shadow QEMU
// launched ahead of a switchover has its own tap). Looked up at call time in the running modules,
// so the order the modules start in does not matter; no vm module = no answer (static config).
import type { RunningAgentModule } from '../agent-module';
import type { VmTapLookup } from './activation-spec-builder';

interface VmTapProvider {
  tapOf(vmId: string, mac: string): string | undefined;
}

export const VM_MODULE_NAME = 'vm';

export function vmTapLookup(modules: ReadonlyMap<string, RunningAgentModule>): VmTapLookup {
  return (vmId, mac) => {
    const vm = modules.get(VM_MODULE_NAME) as Partial<VmTapProvider> | undefined;
    return typeof vm?.tapOf === 'function' ? vm.tapOf(vmId, mac) : undefined;
  };
}

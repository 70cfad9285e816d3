// ipshadow's view of the vm module: which tap the QEMU of a VM uses on this host (a shadow QEMU
// launched ahead of a switchover has its own tap), when its guest is paused, and when an armed
// resume of it here has seen the device state loaded. Looked up at call
// time in the running modules, so the order the modules start in does not matter; no vm module =
// no answer (static config) and nothing to wait for.
import { AGENT_MODULE_NAMES, moduleApi, type RunningAgentModule } from '../agent-module';
import type { VmTapLookup } from './activation-spec-builder';

interface VmTapProvider {
  tapOf(vmId: string, mac: string): string | undefined;
}
interface GuestPauseProvider {
  awaitGuestPaused(vmId: string, timeoutMs: number): Promise<void>;
}
interface ArmedResumeProvider {
  armedResumeLoaded(vmId: string, timeoutMs: number): Promise<void>;
}

/**
 * Waits until an armed resume of a VM in progress on this host has seen the device state loaded
 * (the guest is being resumed) or has ended (at once when none is, or without a vm module).
 */
export type ArmedResumeWait = (vmId: string, timeoutMs: number) => Promise<void>;

export function armedResumeWait(modules: ReadonlyMap<string, RunningAgentModule>): ArmedResumeWait {
  return async (vmId, timeoutMs) => moduleApi<ArmedResumeProvider>(modules, AGENT_MODULE_NAMES.vm, 'armedResumeLoaded')?.armedResumeLoaded(vmId, timeoutMs);
}

/** Waits until this host's guest of a VM is paused (at once without a vm module or such a VM). */
export type GuestPausedWait = (vmId: string, timeoutMs: number) => Promise<void>;

export function guestPausedWait(modules: ReadonlyMap<string, RunningAgentModule>): GuestPausedWait {
  return async (vmId, timeoutMs) => moduleApi<GuestPauseProvider>(modules, AGENT_MODULE_NAMES.vm, 'awaitGuestPaused')?.awaitGuestPaused(vmId, timeoutMs);
}

export function vmTapLookup(modules: ReadonlyMap<string, RunningAgentModule>): VmTapLookup {
  return (vmId, mac) => moduleApi<VmTapProvider>(modules, AGENT_MODULE_NAMES.vm, 'tapOf')?.tapOf(vmId, mac);
}

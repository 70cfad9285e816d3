// How a host makes a VM's address reachable (see DESIGN.md "Network modes"). Shared because the
// coordinator stores and validates the mode that agents apply.
export type NetworkMode = 'routed' | 'bridged' | 'address';
export const NETWORK_MODES: readonly NetworkMode[] = ['routed', 'bridged', 'address'];

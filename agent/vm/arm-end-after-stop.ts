// How an armed resume ends when it did not see the shadow's load, or was called off after it:
// told by the shadow QEMU's run state right after a stop (see VmAgentHost's armed resume).

/**
 * What an autostart-armed shadow's run state, read right after a stop, says about an armed resume
 * whose wait ended without the load being seen (`calledOff`: by a pause; else a failure or time
 * out), or that a pause called off once the load was seen. 'not-run': still waiting for the device
 * state (its autostart now off) or gone; 'ran': the load ended and QEMU ran the guest (paused
 * again), or nothing can be told (QMP failed) and a called-off switchover must assume it;
 * 'loaded': the load ended just as the wait gave up, so the armed resume goes on. Pure.
 */
export function armEndAfterStop(status: string, calledOff: boolean): 'not-run' | 'ran' | 'loaded' {
  if (status === 'paused' || status === 'running' || status === 'suspended') return calledOff ? 'ran' : 'loaded';
  if (status === 'unknown' && calledOff) return 'ran';
  return 'not-run';
}

// The destination side of hand-overs: the ones this host was prepared to accept (PrepareIp with
// a hand-over naming it), taken once by the source's datagram or HandOverIp call, whichever comes
// first. The call that confirms a datagram gets that datagram's result; anything else that does
// not match the prepared hand-over, comes after it was settled or after it expired is refused.
import { FailedPreconditionError } from '../../shared/errors';
import type { VmIpConfig } from '../../shared/vm-ip-config';
import type { ApplyResult } from '../net/ip-applier';
import type { ArmedResumeWait } from './vm-tap-source';

/** A hand-over prepared but not called within this long is forgotten. */
export const HANDOVER_EXPECTED_FOR_MS = 60_000;
/** How long a hand-over's activation waits for an armed resume of the VM here to see the device state loaded (it normally takes some ms). */
export const HANDOVER_RESUME_WAIT_MS = 250;

export interface PreparedHandover {
  sourceHost: string;
  token: number;
  untilMs: number;
  config: VmIpConfig;
  /** The switchover's key for the hand-over datagram, when it has one. */
  datagramKey?: Buffer;
}

export type HandoverPath = 'datagram' | 'call';

export interface PreparedHandoversDeps {
  /** Waits until an armed resume of the VM here has seen the device state loaded (or none runs). */
  armedResume: ArmedResumeWait;
  /** The activation itself (the applier, then bookkeeping), with the path that asked for it. */
  activate(config: VmIpConfig, token: number, receivedAt: number, via: HandoverPath): Promise<ApplyResult>;
  /** Wall-clock ms (default Date.now). */
  nowMs?: () => number;
}

export class PreparedHandovers {
  private readonly expected = new Map<string, PreparedHandover>();
  /** Hand-overs taken by datagram, until the source's HandOverIp confirms them (it gets their result) or the VM's next operation settles them. */
  private readonly byDatagram = new Map<string, { sourceHost: string; token: number; result: Promise<ApplyResult> }>();
  private readonly nowMs: () => number;

  constructor(private readonly d: PreparedHandoversDeps) {
    this.nowMs = d.nowMs ?? Date.now;
  }

  /** PrepareIp named this host the destination: `sourceHost` may hand `config` over with `token`. */
  expect(config: VmIpConfig, token: number, sourceHost: string, datagramKey?: Buffer): void {
    this.settle(config.vm_id);
    this.expected.set(config.vm_id, { sourceHost, token, untilMs: this.nowMs() + HANDOVER_EXPECTED_FOR_MS, config, ...(datagramKey ? { datagramKey } : {}) });
  }

  /** The unexpired hand-over prepared here for `vmId`, if any. */
  prepared(vmId: string): PreparedHandover | undefined {
    const e = this.expected.get(vmId);
    return e && e.untilMs >= this.nowMs() ? e : undefined;
  }

  /**
   * Any (de)activation of the VM settles a hand-over expected here: one that arrives later (a
   * source stalled past the coordinator's rollback) is refused, not applied.
   */
  settle(vmId: string): void {
    this.expected.delete(vmId);
    this.byDatagram.delete(vmId);
  }

  /** The prepared hand-over of `vmId` from `fromHost` (any token), for a rehearsal; refused otherwise. */
  forRehearsal(vmId: string, fromHost: string): PreparedHandover {
    const e = this.prepared(vmId);
    if (!e || e.sourceHost !== fromHost) throw new FailedPreconditionError(`no hand-over of vm '${vmId}' from '${fromHost}' was prepared here`);
    return e;
  }

  /**
   * Takes the prepared hand-over of `config.vm_id` from `fromHost` with `token`, by `via`. The
   * call confirming a datagram that took it gets that result, once.
   */
  take(config: VmIpConfig, token: number, fromHost: string, receivedAt: number, via: HandoverPath): Promise<ApplyResult> {
    const vmId = config.vm_id;
    const taken = this.byDatagram.get(vmId);
    if (via === 'call' && taken && taken.sourceHost === fromHost && taken.token === token) {
      this.byDatagram.delete(vmId);
      return taken.result;
    }
    const e = this.prepared(vmId);
    if (!e || e.sourceHost !== fromHost || e.token !== token) {
      return Promise.reject(new FailedPreconditionError(`no hand-over of vm '${vmId}' from '${fromHost}' with fencing token ${token} was prepared here`));
    }
    const result = (async () => {
      // In a VM switchover the hand-over comes while this host's shadow QEMU loads the device
      // state: the activation waits until that load is over (the guest is being resumed), so it
      // does not slow the load inside the guest's pause, and runs beside the resume.
      await this.d.armedResume(vmId, HANDOVER_RESUME_WAIT_MS);
      if (this.expected.get(vmId) !== e) {
        throw new FailedPreconditionError(`the hand-over of vm '${vmId}' from '${fromHost}' was settled by another operation while the guest was starting here`);
      }
      this.expected.delete(vmId);
      return this.d.activate(config, token, receivedAt, via);
    })();
    if (via === 'datagram') this.byDatagram.set(vmId, { sourceHost: fromHost, token, result });
    return result;
  }
}

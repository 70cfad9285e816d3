// Typed errors of IP activation: kernel refusals, missing links and stale fencing tokens.
import { FailedPreconditionError, NotFoundError, UmbraError, type ErrorReason } from '../../shared/errors';

/** The kernel refused a netlink request; `errno` is the symbolic code (EEXIST, EPERM, ...). */
export class NetlinkRequestError extends UmbraError {
  readonly errno: string;
  readonly operation: string;
  constructor(reason: ErrorReason, operation: string, errno: string, options?: { cause?: unknown }) {
    super(reason, `${operation}: kernel refused with ${errno}`, options);
    this.name = 'NetlinkRequestError';
    this.errno = errno;
    this.operation = operation;
  }
}

/** A named network interface does not exist on this host. */
export class LinkNotFoundError extends NotFoundError {
  readonly interfaceName: string;
  constructor(interfaceName: string, options?: { cause?: unknown }) {
    super('interface', interfaceName, options);
    this.name = 'LinkNotFoundError';
    this.interfaceName = interfaceName;
  }
}

/** An activation or deactivation carried a fencing token older than one already accepted for the VM. */
export class StaleFencingTokenError extends FailedPreconditionError {
  readonly vmId: string;
  readonly offeredToken: number;
  readonly acceptedToken: number;
  constructor(vmId: string, offeredToken: number, acceptedToken: number) {
    super(
      `fencing token ${offeredToken} for vm '${vmId}' is stale: token ${acceptedToken} was already accepted`,
    );
    this.name = 'StaleFencingTokenError';
    this.vmId = vmId;
    this.offeredToken = offeredToken;
    this.acceptedToken = acceptedToken;
  }
}

/** Announcement frames could not be sent on an interface (no pcap handle, send failed). */
export class AnnounceError extends UmbraError {
  readonly interfaceName: string;
  constructor(interfaceName: string, problem: string, options?: { cause?: unknown }) {
    super('UNAVAILABLE', `cannot announce on ${interfaceName}: ${problem}`, options);
    this.name = 'AnnounceError';
    this.interfaceName = interfaceName;
  }
}

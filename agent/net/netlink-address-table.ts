// AddressTable over rtnetlink (RTM_NEWADDR / RTM_DELADDR / RTM_GETADDR).
import { FlagsNew } from 'netlink';
import { InvalidArgumentError } from '../../shared/errors';
import { formatIp, hostPrefixLength } from '../../shared/ip-address';
import { callNetlink, type NetlinkContext } from './netlink-call';
import { NetlinkRequestError } from './net-errors';
import { isAbsent, isAlreadyExists, netlinkErrno } from './netlink-errors';
import { AF_INET, AF_INET6, kernelFamily, requireIp } from './netlink-family';
import type { NetlinkLinkInfo } from './netlink-link-info';
import type { AddressSpec, AddressTable, LinkDetails } from './ports';

export class NetlinkAddressTable implements AddressTable {
  constructor(
    private readonly ctx: NetlinkContext,
    private readonly links: NetlinkLinkInfo,
  ) {}

  private target(spec: AddressSpec) {
    const ip = requireIp('address', spec.address);
    if (!Number.isInteger(spec.prefixLength) || spec.prefixLength < 0 || spec.prefixLength > hostPrefixLength(ip.family)) {
      throw new InvalidArgumentError('prefixLength', `${spec.prefixLength} is out of range for IPv${ip.family}`);
    }
    return ip;
  }

  async ensure(spec: AddressSpec, known?: LinkDetails): Promise<boolean> {
    const ip = this.target(spec);
    const link = await this.links.resolveKnown(spec.interface, known);
    try {
      await this.add(ip, spec.prefixLength, link.index, `add address ${spec.address}/${spec.prefixLength} on ${spec.interface}`);
      return true;
    } catch (err) {
      if (isAlreadyExists(err)) return false;
      throw err;
    }
  }

  /**
   * ensure()'s request, made once with a prefix length one past the family's maximum, which the
   * kernel refuses before it changes anything: EINVAL, or EEXIST for an IPv6 address the interface
   * already holds (that check comes first there). Traced per switchover, a process's first
   * address add took 1-1.4 ms against 0.3-0.5 ms later: its encoding and answer handling ran cold.
   */
  rehearseEnsure(spec: AddressSpec, known?: LinkDetails): Promise<void> {
    return this.rehearse(spec, known, 'adding', ['EINVAL', 'EEXIST'], (ip, prefixlen, index, op) => this.add(ip, prefixlen, index, op));
  }

  private add(ip: ReturnType<typeof requireIp>, prefixlen: number, index: number, op: string): Promise<unknown> {
    return callNetlink(this.ctx, op, (o) =>
      this.ctx.socket.newAddress(
        // IPv6: no DAD, or the address stays tentative (unusable) for about a second after a switchover.
        { family: kernelFamily(ip), prefixlen, index, flags: ip.family === 6 ? { nodad: true } : {} },
        ip.family === 4 ? { local: ip.bytes, address: ip.bytes } : { address: ip.bytes },
        { ...o, flags: FlagsNew.CREATE | FlagsNew.EXCL },
      ),
    );
  }

  async remove(spec: AddressSpec, known?: LinkDetails): Promise<boolean> {
    const ip = this.target(spec);
    const link = await this.links.findKnown(spec.interface, known);
    if (!link) return false;
    try {
      await this.delete(ip, spec.prefixLength, link.index, `delete address ${spec.address}/${spec.prefixLength} on ${spec.interface}`);
      return true;
    } catch (err) {
      if (isAbsent(err)) return false;
      throw err;
    }
  }

  /**
   * remove()'s request, made once so that it matches no address: the prefix length is one past the
   * family's maximum, which no address has (and the IPv4 request also names the address with
   * that prefix length, which the kernel then compares). The kernel answers EADDRNOTAVAIL (IPv4)
   * or EINVAL (IPv6). Warms the source's removal as rehearseEnsure() warms the add.
   */
  rehearseRemove(spec: AddressSpec, known?: LinkDetails): Promise<void> {
    return this.rehearse(spec, known, 'deleting', ['EADDRNOTAVAIL', 'EINVAL'], (ip, prefixlen, index, op) => this.delete(ip, prefixlen, index, op, { matchPrefix: true }));
  }

  /** Sends `request` with the out-of-range prefix length; the kernel's `refusals` are the expected outcome. */
  private async rehearse(
    spec: AddressSpec,
    known: LinkDetails | undefined,
    verb: string,
    refusals: readonly string[],
    request: (ip: ReturnType<typeof requireIp>, prefixlen: number, index: number, op: string) => Promise<unknown>,
  ): Promise<void> {
    const ip = this.target(spec);
    const link = await this.links.resolveKnown(spec.interface, known);
    const op = `rehearse ${verb} address ${spec.address} on ${spec.interface}`;
    try {
      await request(ip, hostPrefixLength(ip.family) + 1, link.index, op);
    } catch (err) {
      if (refusals.includes(netlinkErrno(err) ?? '')) return;
      throw err;
    }
    throw new NetlinkRequestError('INTERNAL', op, 'the kernel accepted an out-of-range prefix length');
  }

  /** `matchPrefix`: IPv4 compares the prefix length only when the request carries IFA_ADDRESS. */
  private delete(ip: ReturnType<typeof requireIp>, prefixlen: number, index: number, op: string, { matchPrefix = false } = {}): Promise<unknown> {
    return callNetlink(this.ctx, op, (o) =>
      this.ctx.socket.delAddress(
        { family: kernelFamily(ip), prefixlen, index },
        ip.family === 4 ? { local: ip.bytes, ...(matchPrefix ? { address: ip.bytes } : {}) } : { address: ip.bytes },
        o,
      ),
    );
  }

  async list(interfaceName?: string): Promise<AddressSpec[]> {
    const names = await this.links.namesByIndex();
    const msgs = await callNetlink(this.ctx, 'list addresses', (o) => this.ctx.socket.getAddresses(undefined, undefined, o));
    const out: AddressSpec[] = [];
    for (const m of msgs) {
      const name = m.data.index === undefined ? undefined : names.get(m.data.index);
      if (!name || (interfaceName !== undefined && name !== interfaceName)) continue;
      const bytes = m.data.family === AF_INET ? (m.attrs.local ?? m.attrs.address) : m.data.family === AF_INET6 ? m.attrs.address : undefined;
      if (!bytes) continue;
      out.push({ interface: name, address: formatIp(bytes), prefixLength: m.data.prefixlen ?? 0 });
    }
    return out;
  }
}

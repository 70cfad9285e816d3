// AddressTable over rtnetlink (RTM_NEWADDR / RTM_DELADDR / RTM_GETADDR).
import { FlagsNew } from 'netlink';
import { InvalidArgumentError } from '../../shared/errors';
import { formatIp, hostPrefixLength } from '../../shared/ip-address';
import { callNetlink, type NetlinkContext } from './netlink-call';
import { isAbsent, isAlreadyExists } from './netlink-errors';
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
    const op = `add address ${spec.address}/${spec.prefixLength} on ${spec.interface}`;
    try {
      await callNetlink(this.ctx, op, (o) =>
        this.ctx.socket.newAddress(
          // IPv6: no DAD, or the address stays tentative (unusable) for about a second after a switchover.
          { family: kernelFamily(ip), prefixlen: spec.prefixLength, index: link.index, flags: ip.family === 6 ? { nodad: true } : {} },
          ip.family === 4 ? { local: ip.bytes, address: ip.bytes } : { address: ip.bytes },
          { ...o, flags: FlagsNew.CREATE | FlagsNew.EXCL },
        ),
      );
      return true;
    } catch (err) {
      if (isAlreadyExists(err)) return false;
      throw err;
    }
  }

  async remove(spec: AddressSpec, known?: LinkDetails): Promise<boolean> {
    const ip = this.target(spec);
    const link = await this.links.findKnown(spec.interface, known);
    if (!link) return false;
    const op = `delete address ${spec.address}/${spec.prefixLength} on ${spec.interface}`;
    try {
      await callNetlink(this.ctx, op, (o) =>
        this.ctx.socket.delAddress(
          { family: kernelFamily(ip), prefixlen: spec.prefixLength, index: link.index },
          ip.family === 4 ? { local: ip.bytes } : { address: ip.bytes },
          o,
        ),
      );
      return true;
    } catch (err) {
      if (isAbsent(err)) return false;
      throw err;
    }
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

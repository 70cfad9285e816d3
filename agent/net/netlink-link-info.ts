// LinkInfo over rtnetlink: interface name -> index, MAC and up state, and index -> name for dumps.
import { formatMac } from '../../shared/ip-address';
import { LinkNotFoundError } from './net-errors';
import { callNetlink, type NetlinkContext } from './netlink-call';
import { isAbsent } from './netlink-errors';
import type { LinkDetails, LinkInfo } from './ports';

export class NetlinkLinkInfo implements LinkInfo {
  constructor(private readonly ctx: NetlinkContext) {}

  async find(name: string): Promise<LinkDetails | undefined> {
    try {
      // RTM_GETLINK by IFLA_IFNAME: one message, no full dump on hosts with thousands of taps.
      const [msg] = await callNetlink(this.ctx, `get link ${name}`, (o) => this.ctx.socket.getLink({}, { ifname: name }, o));
      if (!msg || msg.data.index === undefined) return undefined;
      const address = msg.attrs.address;
      return {
        name: msg.attrs.ifname ?? name,
        index: msg.data.index,
        mac: address && address.length === 6 ? formatMac(address) : undefined,
        up: msg.data.flags?.up === true,
      };
    } catch (err) {
      if (isAbsent(err)) return undefined;
      throw err;
    }
  }

  async resolve(name: string): Promise<LinkDetails> {
    const link = await this.find(name);
    if (!link) throw new LinkNotFoundError(name);
    return link;
  }

  /** `known` when it is `name` (the caller resolved it moments ago: no round trip), else find(name). */
  findKnown(name: string, known?: LinkDetails): Promise<LinkDetails | undefined> {
    return known && known.name === name ? Promise.resolve(known) : this.find(name);
  }

  /** As findKnown(), throwing LinkNotFoundError when there is no such link. */
  resolveKnown(name: string, known?: LinkDetails): Promise<LinkDetails> {
    return known && known.name === name ? Promise.resolve(known) : this.resolve(name);
  }

  /** Index -> name of every link, for translating dumps back into our vocabulary. */
  async namesByIndex(): Promise<Map<number, string>> {
    const links = await callNetlink(this.ctx, 'list links', (o) => this.ctx.socket.getLinks(undefined, undefined, o));
    const out = new Map<number, string>();
    for (const l of links) if (l.data.index !== undefined && l.attrs.ifname) out.set(l.data.index, l.attrs.ifname);
    return out;
  }
}

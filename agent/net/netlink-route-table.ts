// RouteTable over rtnetlink: /32 and /128 routes of the main table straight to a device.
import { FlagsNew } from 'netlink';
import { formatIp, hostPrefixLength, type ParsedIp } from '../../shared/ip-address';
import { callNetlink, type NetlinkContext } from './netlink-call';
import { isAbsent, netlinkErrno } from './netlink-errors';
import { AF_INET, AF_INET6, MAIN_TABLE, kernelFamily, requireIp } from './netlink-family';
import type { NetlinkLinkInfo } from './netlink-link-info';
import type { HostRouteSpec, LinkDetails, RouteTable } from './ports';

/** A route lookup's answers when nothing covers the address. */
const UNROUTABLE_ERRNOS: ReadonlySet<string> = new Set(['ENETUNREACH', 'EHOSTUNREACH']);

function hostRouteHeader(ip: ParsedIp) {
  return {
    family: kernelFamily(ip),
    dstLen: hostPrefixLength(ip.family),
    table: MAIN_TABLE,
    protocol: 'STATIC' as const,
    // No gateway: the destination sits on the device's link, as `ip route add X dev tap` does.
    scope: ip.family === 4 ? ('LINK' as const) : ('UNIVERSE' as const),
    type: 'UNICAST' as const,
  };
}

export class NetlinkRouteTable implements RouteTable {
  constructor(
    private readonly ctx: NetlinkContext,
    private readonly links: NetlinkLinkInfo,
  ) {}

  async ensureHostRoute(spec: HostRouteSpec, device?: LinkDetails): Promise<boolean> {
    const ip = requireIp('destination', spec.destination);
    const link = await this.links.resolveKnown(spec.device, device);
    if (await this.routeThrough(ip, link.index)) return false;
    // REPLACE: a leftover route for the same address to another device (a previous tap) is taken over.
    await callNetlink(this.ctx, `add route ${spec.destination} dev ${spec.device}`, (o) =>
      this.ctx.socket.newRoute(hostRouteHeader(ip), { dst: ip.bytes, oif: link.index }, { ...o, flags: FlagsNew.CREATE | FlagsNew.REPLACE }),
    );
    return true;
  }

  async removeHostRoute(spec: HostRouteSpec, device?: LinkDetails): Promise<boolean> {
    const ip = requireIp('destination', spec.destination);
    const link = await this.links.findKnown(spec.device, device);
    if (!link) return false;
    try {
      await callNetlink(this.ctx, `delete route ${spec.destination} dev ${spec.device}`, (o) =>
        this.ctx.socket.delRoute(hostRouteHeader(ip), { dst: ip.bytes, oif: link.index }, o),
      );
      return true;
    } catch (err) {
      if (isAbsent(err)) return false;
      throw err;
    }
  }

  async hasHostRoute(spec: HostRouteSpec): Promise<boolean> {
    const ip = requireIp('destination', spec.destination);
    const link = await this.links.find(spec.device);
    return link !== undefined && (await this.routeThrough(ip, link.index));
  }

  /**
   * Whether the main table's entry for `ip` is its host route straight to link `index`: one FIB
   * lookup answered with the matching entry itself (RTM_F_FIB_MATCH), instead of dumping every
   * route of both families, which an activation and every reconciliation probe did per VM.
   */
  private async routeThrough(ip: ParsedIp, index: number): Promise<boolean> {
    let msgs;
    try {
      msgs = await callNetlink(this.ctx, `get route ${formatIp(ip.bytes)}`, (o) =>
        this.ctx.socket.getRoute({ family: kernelFamily(ip), dstLen: hostPrefixLength(ip.family), flags: { fibMatch: true } }, { dst: ip.bytes }, o),
      );
    } catch (err) {
      // No entry covers the address at all (no default route either).
      if (isAbsent(err) || UNROUTABLE_ERRNOS.has(netlinkErrno(err) ?? '')) return false;
      throw err;
    }
    return msgs.some((m) => (m.attrs.table ?? m.data.table) === MAIN_TABLE && m.data.dstLen === hostPrefixLength(ip.family) && !m.attrs.gateway && m.attrs.oif === index);
  }

  async listHostRoutes(device?: string): Promise<HostRouteSpec[]> {
    const names = await this.links.namesByIndex();
    const out: HostRouteSpec[] = [];
    for (const family of [AF_INET, AF_INET6]) {
      const msgs = await callNetlink(this.ctx, 'list routes', (o) => this.ctx.socket.getRoutes({ family }, undefined, o));
      for (const m of msgs) {
        const table = m.attrs.table ?? m.data.table;
        const dst = m.attrs.dst;
        if (table !== MAIN_TABLE || !dst || m.attrs.gateway || m.attrs.oif === undefined) continue;
        if (m.data.dstLen !== dst.length * 8) continue;
        const name = names.get(m.attrs.oif);
        if (!name || (device !== undefined && name !== device)) continue;
        out.push({ destination: formatIp(dst), device: name });
      }
    }
    return out;
  }
}

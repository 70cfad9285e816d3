// RouteTable over rtnetlink: /32 and /128 routes of the main table straight to a device.
import { FlagsNew } from 'netlink';
import { formatIp, hostPrefixLength, type ParsedIp } from '../../shared/ip-address';
import { callNetlink, type NetlinkContext } from './netlink-call';
import { isAbsent } from './netlink-errors';
import { AF_INET, AF_INET6, MAIN_TABLE, kernelFamily, requireIp } from './netlink-family';
import type { NetlinkLinkInfo } from './netlink-link-info';
import type { HostRouteSpec, RouteTable } from './ports';

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

  async ensureHostRoute(spec: HostRouteSpec): Promise<boolean> {
    const ip = requireIp('destination', spec.destination);
    const link = await this.links.resolve(spec.device);
    const existing = await this.listHostRoutes();
    if (existing.some((r) => r.destination === formatIp(ip.bytes) && r.device === link.name)) return false;
    // REPLACE: a leftover route for the same address to another device (a previous tap) is taken over.
    await callNetlink(this.ctx, `add route ${spec.destination} dev ${spec.device}`, (o) =>
      this.ctx.socket.newRoute(hostRouteHeader(ip), { dst: ip.bytes, oif: link.index }, { ...o, flags: FlagsNew.CREATE | FlagsNew.REPLACE }),
    );
    return true;
  }

  async removeHostRoute(spec: HostRouteSpec): Promise<boolean> {
    const ip = requireIp('destination', spec.destination);
    const link = await this.links.find(spec.device);
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

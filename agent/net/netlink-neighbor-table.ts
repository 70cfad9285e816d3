// NeighborTable over rtnetlink: proxy ARP/NDP entries (NTF_PROXY) and permanent neighbours.
import { FlagsNew } from 'netlink';
import { formatIp, formatMac, type ParsedIp } from '../../shared/ip-address';
import { callNetlink, type NetlinkContext } from './netlink-call';
import { isAbsent } from './netlink-errors';
import { AF_INET, AF_INET6, kernelFamily, requireIp, requireMac } from './netlink-family';
import type { NetlinkLinkInfo } from './netlink-link-info';
import type { LinkDetails, NeighborTable, PermanentNeighborSpec, ProxyNeighborSpec } from './ports';

export class NetlinkNeighborTable implements NeighborTable {
  constructor(
    private readonly ctx: NetlinkContext,
    private readonly links: NetlinkLinkInfo,
  ) {}

  async ensureProxy(spec: ProxyNeighborSpec, known?: LinkDetails): Promise<boolean> {
    const ip = requireIp('address', spec.address);
    const link = await this.links.resolveKnown(spec.interface, known);
    if (await this.proxyEntryExists(link.index, ip)) return false;
    await callNetlink(this.ctx, `add proxy neighbour ${spec.address} on ${spec.interface}`, (o) =>
      this.ctx.socket.newNeighbor(
        { family: kernelFamily(ip), ifindex: link.index, flags: { proxy: true } },
        { dst: ip.bytes },
        { ...o, flags: FlagsNew.CREATE | FlagsNew.REPLACE },
      ),
    );
    return true;
  }

  async removeProxy(spec: ProxyNeighborSpec, known?: LinkDetails): Promise<boolean> {
    const ip = requireIp('address', spec.address);
    const link = await this.links.findKnown(spec.interface, known);
    if (!link) return false;
    try {
      await callNetlink(this.ctx, `delete proxy neighbour ${spec.address} on ${spec.interface}`, (o) =>
        this.ctx.socket.delNeighbor({ family: kernelFamily(ip), ifindex: link.index, flags: { proxy: true } }, { dst: ip.bytes }, o),
      );
      return true;
    } catch (err) {
      if (isAbsent(err)) return false;
      throw err;
    }
  }

  async listProxies(interfaceName?: string): Promise<ProxyNeighborSpec[]> {
    const names = await this.links.namesByIndex();
    const out: ProxyNeighborSpec[] = [];
    for (const family of [AF_INET, AF_INET6]) {
      // A dump request whose flags are exactly NTF_PROXY lists the proxy table instead of the cache.
      const msgs = await callNetlink(this.ctx, 'list proxy neighbours', (o) =>
        this.ctx.socket.getNeighbors({ family, flags: { proxy: true } }, undefined, o),
      );
      for (const m of msgs) {
        const name = m.data.ifindex === undefined ? undefined : names.get(m.data.ifindex);
        if (!m.data.flags?.proxy || !m.attrs.dst || !name) continue;
        if (interfaceName !== undefined && name !== interfaceName) continue;
        out.push({ interface: name, address: formatIp(m.attrs.dst) });
      }
    }
    return out;
  }

  async ensurePermanent(spec: PermanentNeighborSpec, known?: LinkDetails): Promise<boolean> {
    const ip = requireIp('address', spec.address);
    const mac = requireMac('mac', spec.mac);
    const link = await this.links.resolveKnown(spec.interface, known);
    if (await this.permanentEntryIs(link.index, ip, mac)) return false;
    await callNetlink(this.ctx, `set neighbour ${spec.address} -> ${spec.mac} on ${spec.interface}`, (o) =>
      this.ctx.socket.newNeighbor(
        { family: kernelFamily(ip), ifindex: link.index, state: { permanent: true } },
        { dst: ip.bytes, lladdr: mac },
        { ...o, flags: FlagsNew.CREATE | FlagsNew.REPLACE },
      ),
    );
    return true;
  }

  async hasPermanent(spec: PermanentNeighborSpec): Promise<boolean> {
    const ip = requireIp('address', spec.address);
    const mac = requireMac('mac', spec.mac);
    const link = await this.links.find(spec.interface);
    return link !== undefined && (await this.permanentEntryIs(link.index, ip, mac));
  }

  // The presence checks ask for the one entry (RTM_GETNEIGH, NTF_PROXY for a proxy entry) where
  // listing meant dumping every link and every neighbour of both families, inside a switchover's
  // activation on a host with many VMs.

  /** Whether the neighbour entry of `ip` on link `index` is permanent with `mac`. */
  private async permanentEntryIs(index: number, ip: ParsedIp, mac: Buffer): Promise<boolean> {
    const m = await this.getEntry(index, ip, false);
    return !!m && !!m.data.state?.permanent && !!m.attrs.lladdr && formatMac(m.attrs.lladdr) === formatMac(mac);
  }

  private async proxyEntryExists(index: number, ip: ParsedIp): Promise<boolean> {
    return (await this.getEntry(index, ip, true)) !== undefined;
  }

  private async getEntry(index: number, ip: ParsedIp, proxy: boolean) {
    try {
      const [m] = await callNetlink(this.ctx, `get ${proxy ? 'proxy ' : ''}neighbour ${formatIp(ip.bytes)}`, (o) =>
        this.ctx.socket.getNeighbor({ family: kernelFamily(ip), ifindex: index, ...(proxy ? { flags: { proxy: true } } : {}) }, { dst: ip.bytes }, o),
      );
      return m;
    } catch (err) {
      if (isAbsent(err)) return undefined;
      throw err;
    }
  }

  async removePermanent(spec: Omit<PermanentNeighborSpec, 'mac'>, known?: LinkDetails): Promise<boolean> {
    const ip = requireIp('address', spec.address);
    const link = await this.links.findKnown(spec.interface, known);
    if (!link) return false;
    try {
      await callNetlink(this.ctx, `delete neighbour ${spec.address} on ${spec.interface}`, (o) =>
        this.ctx.socket.delNeighbor({ family: kernelFamily(ip), ifindex: link.index }, { dst: ip.bytes }, o),
      );
      return true;
    } catch (err) {
      if (isAbsent(err)) return false;
      throw err;
    }
  }

  async listPermanent(interfaceName?: string): Promise<PermanentNeighborSpec[]> {
    const names = await this.links.namesByIndex();
    const out: PermanentNeighborSpec[] = [];
    for (const family of [AF_INET, AF_INET6]) {
      const msgs = await callNetlink(this.ctx, 'list neighbours', (o) => this.ctx.socket.getNeighbors({ family }, undefined, o));
      for (const m of msgs) {
        const name = m.data.ifindex === undefined ? undefined : names.get(m.data.ifindex);
        if (!m.data.state?.permanent || !m.attrs.dst || !m.attrs.lladdr || m.attrs.lladdr.length !== 6 || !name) continue;
        if (interfaceName !== undefined && name !== interfaceName) continue;
        out.push({ interface: name, address: formatIp(m.attrs.dst), mac: formatMac(m.attrs.lladdr) });
      }
    }
    return out;
  }
}

// In-memory NetTables for unit tests: Maps keyed like the kernel's tables, with failure injection.
import { LinkNotFoundError, NetlinkRequestError } from '../../../../agent/net/net-errors';
import type {
  AddressSpec,
  FdbEntrySpec,
  HostRouteSpec,
  LinkDetails,
  NetTables,
  PermanentNeighborSpec,
  ProxyNeighborSpec,
} from '../../../../agent/net/ports';

export class MemoryNetTables implements NetTables {
  readonly linkMap = new Map<string, LinkDetails>();
  readonly addressMap = new Map<string, AddressSpec>();
  readonly routeMap = new Map<string, HostRouteSpec>();
  readonly proxyMap = new Map<string, ProxyNeighborSpec>();
  readonly permanentMap = new Map<string, PermanentNeighborSpec>();
  readonly fdbMap = new Map<string, FdbEntrySpec>();
  /** Operation names (e.g. 'routes.ensureHostRoute') in call order. */
  readonly calls: string[] = [];
  /** Operations that fail once with EPERM when called next. */
  readonly failNext = new Set<string>();

  addLink(name: string, mac?: string): void {
    this.linkMap.set(name, { name, index: this.linkMap.size + 1, mac, up: true });
  }

  private enter(op: string): void {
    this.calls.push(op);
    if (this.failNext.delete(op)) throw new NetlinkRequestError('PERMISSION_DENIED', op, 'EPERM');
  }

  private need(name: string): void {
    if (!this.linkMap.has(name)) throw new LinkNotFoundError(name);
  }

  private ensureIn<T>(op: string, map: Map<string, T>, key: string, value: T, iface: string): boolean {
    this.enter(op);
    this.need(iface);
    if (map.has(key) && JSON.stringify(map.get(key)) === JSON.stringify(value)) return false;
    map.set(key, value);
    return true;
  }

  private removeFrom<T>(op: string, map: Map<string, T>, key: string): boolean {
    this.enter(op);
    return map.delete(key);
  }

  links = {
    find: async (name: string) => this.linkMap.get(name),
    resolve: async (name: string) => {
      const l = this.linkMap.get(name);
      if (!l) throw new LinkNotFoundError(name);
      return l;
    },
  };

  addresses = {
    ensure: async (s: AddressSpec) => this.ensureIn('addresses.ensure', this.addressMap, `${s.interface}|${s.address}/${s.prefixLength}`, { ...s }, s.interface),
    remove: async (s: AddressSpec) => this.removeFrom('addresses.remove', this.addressMap, `${s.interface}|${s.address}/${s.prefixLength}`),
    rehearseEnsure: async (s: AddressSpec) => {
      this.enter('addresses.rehearseEnsure');
      this.need(s.interface);
    },
    rehearseRemove: async (s: AddressSpec) => {
      this.enter('addresses.rehearseRemove');
      this.need(s.interface);
    },
    list: async (i?: string) => [...this.addressMap.values()].filter((a) => i === undefined || a.interface === i),
  };

  routes = {
    // Like the kernel's replace: one route per destination, whatever device it had before.
    ensureHostRoute: async (s: HostRouteSpec) => this.ensureIn('routes.ensureHostRoute', this.routeMap, s.destination, { ...s }, s.device),
    removeHostRoute: async (s: HostRouteSpec) => {
      this.enter('routes.removeHostRoute');
      if (this.routeMap.get(s.destination)?.device !== s.device) return false;
      return this.routeMap.delete(s.destination);
    },
    hasHostRoute: async (r: HostRouteSpec) => [...this.routeMap.values()].some((x) => x.destination === r.destination && x.device === r.device),
    listHostRoutes: async (d?: string) => [...this.routeMap.values()].filter((r) => d === undefined || r.device === d),
  };

  neighbors = {
    ensureProxy: async (s: ProxyNeighborSpec) => this.ensureIn('neighbors.ensureProxy', this.proxyMap, `${s.interface}|${s.address}`, { ...s }, s.interface),
    removeProxy: async (s: ProxyNeighborSpec) => this.removeFrom('neighbors.removeProxy', this.proxyMap, `${s.interface}|${s.address}`),
    listProxies: async (i?: string) => [...this.proxyMap.values()].filter((p) => i === undefined || p.interface === i),
    ensurePermanent: async (s: PermanentNeighborSpec) =>
      this.ensureIn('neighbors.ensurePermanent', this.permanentMap, `${s.interface}|${s.address}`, { ...s }, s.interface),
    removePermanent: async (s: Omit<PermanentNeighborSpec, 'mac'>) => this.removeFrom('neighbors.removePermanent', this.permanentMap, `${s.interface}|${s.address}`),
    listPermanent: async (i?: string) => [...this.permanentMap.values()].filter((p) => i === undefined || p.interface === i),
    hasPermanent: async (s: PermanentNeighborSpec) => this.permanentMap.get(`${s.interface}|${s.address}`)?.mac === s.mac,
  };

  fdb = {
    ensure: async (s: FdbEntrySpec) => this.ensureIn('fdb.ensure', this.fdbMap, `${s.port}|${s.mac}|${s.vlan ?? ''}`, { ...s }, s.port),
    remove: async (s: FdbEntrySpec) => this.removeFrom('fdb.remove', this.fdbMap, `${s.port}|${s.mac}|${s.vlan ?? ''}`),
    list: async (p?: string) => [...this.fdbMap.values()].filter((e) => p === undefined || e.port === p),
  };

  /** Everything present, as a comparable snapshot. */
  snapshot(): Record<string, string[]> {
    return {
      addresses: [...this.addressMap.keys()].sort(),
      routes: [...this.routeMap.values()].map((r) => `${r.destination}>${r.device}`).sort(),
      proxies: [...this.proxyMap.keys()].sort(),
      permanent: [...this.permanentMap.values()].map((p) => `${p.interface}|${p.address}>${p.mac}`).sort(),
      fdb: [...this.fdbMap.keys()].sort(),
    };
  }
}

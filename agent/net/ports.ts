// Ports of the IP-activation logic: the kernel tables and the announcer it needs, in Umbra's own
// vocabulary (interface names, textual addresses and MACs; never ifindex, Buffer or netlink flags).
//
// Contract shared by every table: `ensure*` leaves the entry present (already present = success),
// `remove*` leaves it absent (already absent, or its interface gone = success). Both return true
// when they changed something. Failures are UmbraErrors (see net-errors.ts).

/** An address held by an interface, e.g. { interface: 'eth0', address: '10.0.0.9', prefixLength: 24 }. */
export interface AddressSpec {
  interface: string;
  /** Textual IPv4 or IPv6 address, no prefix. */
  address: string;
  prefixLength: number;
}

// The optional LinkDetails arguments are the interfaces the caller resolved moments ago (an IP
// switch's prepare), so the change needs no lookup. A removal through one that finds nothing may
// mean the interface was replaced since (its index another's now): the caller then tries again
// without it.

export interface AddressTable {
  ensure(spec: AddressSpec, link?: LinkDetails): Promise<boolean>;
  remove(spec: AddressSpec, link?: LinkDetails): Promise<boolean>;
  /** Runs ensure()'s path through to the kernel without changing anything (warms it before a switch). */
  rehearseEnsure(spec: AddressSpec, link?: LinkDetails): Promise<void>;
  /** The same for remove(): a request that matches no address. */
  rehearseRemove(spec: AddressSpec, link?: LinkDetails): Promise<void>;
  /** Addresses on `interfaceName` (all interfaces when omitted), both families. */
  list(interfaceName?: string): Promise<AddressSpec[]>;
}

/** A host route (/32 or /128) in the main table: `destination` reached directly through `device`. */
export interface HostRouteSpec {
  destination: string;
  device: string;
}

export interface RouteTable {
  /** Adds or replaces the host route, so a stale route to another device is taken over. */
  ensureHostRoute(spec: HostRouteSpec, device?: LinkDetails): Promise<boolean>;
  removeHostRoute(spec: HostRouteSpec, device?: LinkDetails): Promise<boolean>;
  /** Whether the main table routes `destination` (as a host route) straight to `device`. */
  hasHostRoute(spec: HostRouteSpec): Promise<boolean>;
  /** Host routes of the main table, optionally only those through `device`. */
  listHostRoutes(device?: string): Promise<HostRouteSpec[]>;
}

/** A proxy ARP (IPv4) / proxy NDP (IPv6) entry: this host answers for `address` on `interface`. */
export interface ProxyNeighborSpec {
  interface: string;
  address: string;
}

/** A permanent neighbour entry: `address` on `interface` resolves to `mac` without ARP/ND. */
export interface PermanentNeighborSpec {
  interface: string;
  address: string;
  mac: string;
}

export interface NeighborTable {
  ensureProxy(spec: ProxyNeighborSpec, link?: LinkDetails): Promise<boolean>;
  removeProxy(spec: ProxyNeighborSpec, link?: LinkDetails): Promise<boolean>;
  listProxies(interfaceName?: string): Promise<ProxyNeighborSpec[]>;
  ensurePermanent(spec: PermanentNeighborSpec, link?: LinkDetails): Promise<boolean>;
  removePermanent(spec: Omit<PermanentNeighborSpec, 'mac'>, link?: LinkDetails): Promise<boolean>;
  listPermanent(interfaceName?: string): Promise<PermanentNeighborSpec[]>;
  /** Whether `spec.address` is a permanent neighbour with `spec.mac` on `spec.interface` (false when the interface is gone). */
  hasPermanent(spec: PermanentNeighborSpec): Promise<boolean>;
}

/** A static bridge forwarding entry: frames for `mac` (on `vlan`) leave through bridge port `port`. */
export interface FdbEntrySpec {
  port: string;
  mac: string;
  vlan?: number;
}

export interface FdbTable {
  ensure(spec: FdbEntrySpec, port?: LinkDetails): Promise<boolean>;
  remove(spec: FdbEntrySpec, port?: LinkDetails): Promise<boolean>;
  /** Static (user-added) entries, optionally only those on `port`. */
  list(port?: string): Promise<FdbEntrySpec[]>;
}

export interface LinkDetails {
  name: string;
  index: number;
  /** Lower-case "aa:bb:..."; undefined for links without a hardware address. */
  mac?: string;
  up: boolean;
}

export interface LinkInfo {
  /** The link named `name`; throws LinkNotFoundError when there is none. */
  resolve(name: string): Promise<LinkDetails>;
  /** Like resolve(), but undefined when the link does not exist. */
  find(name: string): Promise<LinkDetails | undefined>;
}

/** One burst of announcements: gratuitous ARP (IPv4) or unsolicited Neighbor Advertisement (IPv6). */
export interface Announcement {
  /** Interface the frames leave through. */
  interface: string;
  /** Address announced. */
  address: string;
  /** Link-layer address announced for it (also the Ethernet source). */
  mac: string;
  /** Frames in the burst, at least 1; the first is sent at once. */
  count: number;
  /** Spacing between frames. */
  intervalMs: number;
}

export interface AnnouncementBurst {
  /** Resolves when the first frame has left (rejects if it could not be sent). */
  readonly firstSent: Promise<void>;
  /** Resolves (never rejects) with the number of frames sent once the burst is over, cancelled or failed. */
  readonly finished: Promise<number>;
  /** Stops the remaining frames (e.g. the address was deactivated meanwhile). */
  cancel(): void;
}

export interface Announcer {
  /**
   * Readies `interfaceName` (opens its send handle) so the first frame of a later burst leaves at
   * once; given the address and MAC of that burst, its frame is built now too.
   */
  prepare(interfaceName: string, frame?: Pick<Announcement, 'address' | 'mac'>): void;
  announce(announcement: Announcement): AnnouncementBurst;
  close(): Promise<void>;
}

/** The kernel tables used together by IpApplier. */
export interface NetTables {
  links: LinkInfo;
  addresses: AddressTable;
  routes: RouteTable;
  neighbors: NeighborTable;
  fdb: FdbTable;
}

// Per-MAC DHCP lease table fed by decoded packets: binds on ACK, ends on NAK/RELEASE/DECLINE or
// expiry, and reports each meaningful change as a typed, versioned event. Pure: time comes from a Clock.
import { InvalidArgumentError } from '../../shared/errors';
import type { DhcpMessage, RelayAgentInfo } from './dhcp-packet-codec';
import { DhcpMessageType } from './dhcp-option-codes';
import { normalizeMac, parseIpv4 } from './dhcp-wire';

/** RFC 2131 4.4.5 defaults when the server sends no T1/T2. */
export const DEFAULT_T1_FRACTION = 0.5;
export const DEFAULT_T2_FRACTION = 0.875;
/** Lease time meaning "forever" (RFC 2132 9.2). */
export const INFINITE_LEASE_SEC = 0xffffffff;
/** Client hostnames/ids remembered from DISCOVER/REQUEST until the ACK arrives; oldest dropped first. */
export const MAX_PENDING_REQUESTS = 4096;
/**
 * An ACK identical to the last one (same xid, timers and fields) within this window is the same
 * packet seen twice (retransmission, or captured on two ports), not a renewal. Clients may reuse
 * the xid for renewals (busybox udhcpc does), so the xid alone cannot tell.
 */
export const DUPLICATE_ACK_WINDOW_MS = 1000;
/** Format version of save(). */
export const LEASE_TABLE_STATE_VERSION = 1;

export interface Clock {
  nowMs(): number;
}

export const systemClock: Clock = { nowMs: () => Date.now() };

export type LeaseState = 'bound' | 'released' | 'expired';
export type LeaseEndReason = 'release' | 'decline' | 'nak' | 'expiry';

export interface DhcpLease {
  /** Lower-case colon hex. */
  mac: string;
  state: LeaseState;
  address: string;
  subnetMask?: string;
  routers: string[];
  dnsServers: string[];
  domainName?: string;
  hostname?: string;
  /** INFINITE_LEASE_SEC for a lease that never expires. */
  leaseTimeSec: number;
  renewalTimeSec: number;
  rebindingTimeSec: number;
  serverId?: string;
  /** Option 61 as hex. */
  clientId?: string;
  relayAgentInfo?: RelayAgentInfo;
  /** 802.1Q VLAN the ACK was seen on; absent when untagged. */
  vlanId?: number;
  /** When the last ACK for this lease was seen (ms since the epoch). */
  leaseStartMs: number;
  /** null for an infinite lease. */
  expiresAtMs: number | null;
  lastSeenMs: number;
  /** Increases with every event for this MAC (table-wide sequence, so it never repeats after restore). */
  version: number;
  endReason?: LeaseEndReason;
}

export type LeaseChangeKind = 'bound' | 'renewed' | 'changed' | 'released' | 'expired';

export interface LeaseChangeEvent {
  kind: LeaseChangeKind;
  mac: string;
  version: number;
  lease: DhcpLease;
  /** The lease as it was before, for 'renewed' and 'changed'. */
  previous?: DhcpLease;
  /** Names of the DhcpLease fields that differ, for 'changed'. */
  changedFields?: string[];
}

/** Where the packet was seen; the table cannot tell from the DHCP message alone. */
export interface PacketContext {
  vlanId?: number;
}

export interface LeaseTableState {
  version: number;
  sequence: number;
  leases: DhcpLease[];
}

/** Fields whose change is a configuration change for the shadows (T1/T2 are not: servers fuzz them). */
const MEANINGFUL_FIELDS = [
  'address',
  'subnetMask',
  'routers',
  'dnsServers',
  'domainName',
  'hostname',
  'leaseTimeSec',
  'serverId',
  'clientId',
  'relayAgentInfo',
  'vlanId',
] as const;

interface PendingRequest {
  hostname?: string;
  clientId?: string;
}

export class DhcpLeaseTable {
  private readonly leases = new Map<string, DhcpLease>();
  private readonly pending = new Map<string, PendingRequest>();
  private readonly lastAck = new Map<string, { xid: number; t1: number; t2: number; atMs: number }>();
  private readonly listeners = new Set<(e: LeaseChangeEvent) => void>();
  private sequence = 0;

  constructor(private readonly clock: Clock = systemClock) {}

  /** Subscribes to change events; returns the unsubscribe function. */
  onChange(listener: (e: LeaseChangeEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get(mac: string): DhcpLease | undefined {
    const key = normalizeMac(mac);
    const lease = key ? this.leases.get(key) : undefined;
    return lease ? cloneLease(lease) : undefined;
  }

  list(): DhcpLease[] {
    return [...this.leases.values()].map(cloneLease);
  }

  get size(): number {
    return this.leases.size;
  }

  /**
   * Applies one decoded message; returns the event it caused, if any. Messages that carry no
   * lease information (OFFER, INFORM, plain BOOTP, non-Ethernet chaddr) are ignored.
   */
  apply(msg: DhcpMessage, ctx: PacketContext = {}): LeaseChangeEvent | undefined {
    if (msg.htype !== 1 || msg.hlen !== 6) return undefined;
    const mac = msg.chaddr;
    const existing = this.leases.get(mac);
    if (existing) existing.lastSeenMs = this.clock.nowMs();
    switch (msg.messageType) {
      case DhcpMessageType.DISCOVER:
      case DhcpMessageType.REQUEST:
        this.remember(mac, msg);
        return undefined;
      case DhcpMessageType.ACK:
        return this.bind(mac, msg, ctx);
      case DhcpMessageType.NAK:
        if (existing?.state === 'bound' && (!msg.serverId || !existing.serverId || msg.serverId === existing.serverId)) {
          return this.end(existing, 'released', 'nak');
        }
        return undefined;
      case DhcpMessageType.RELEASE:
        if (existing?.state === 'bound' && msg.ciaddr === existing.address) return this.end(existing, 'released', 'release');
        return undefined;
      case DhcpMessageType.DECLINE:
        if (existing?.state === 'bound' && msg.requestedAddress === existing.address) return this.end(existing, 'released', 'decline');
        return undefined;
      default:
        return undefined;
    }
  }

  /** Ends every bound lease whose expiry has passed; call it periodically. */
  expireDue(): LeaseChangeEvent[] {
    const now = this.clock.nowMs();
    const events: LeaseChangeEvent[] = [];
    for (const lease of this.leases.values()) {
      if (lease.state === 'bound' && lease.expiresAtMs !== null && lease.expiresAtMs <= now) {
        events.push(this.end(lease, 'expired', 'expiry'));
      }
    }
    return events;
  }

  /** Earliest expiry among bound leases (ms since the epoch), or null when none can expire. */
  nextExpiryMs(): number | null {
    let next: number | null = null;
    for (const l of this.leases.values()) {
      if (l.state === 'bound' && l.expiresAtMs !== null && (next === null || l.expiresAtMs < next)) next = l.expiresAtMs;
    }
    return next;
  }

  private remember(mac: string, msg: DhcpMessage): void {
    if (msg.hostname === undefined && msg.clientId === undefined) return;
    this.pending.delete(mac);
    this.pending.set(mac, { hostname: msg.hostname, clientId: msg.clientId });
    if (this.pending.size > MAX_PENDING_REQUESTS) this.pending.delete(this.pending.keys().next().value as string);
  }

  private bind(mac: string, msg: DhcpMessage, ctx: PacketContext): LeaseChangeEvent | undefined {
    // An ACK without yiaddr answers an INFORM: no lease.
    if (msg.yiaddr === '0.0.0.0') return undefined;
    const now = this.clock.nowMs();
    const existing = this.leases.get(mac);
    const pending = this.pending.get(mac);
    const leaseTimeSec = msg.leaseTimeSec ?? INFINITE_LEASE_SEC;
    const infinite = leaseTimeSec === INFINITE_LEASE_SEC;
    const next: DhcpLease = {
      mac,
      state: 'bound',
      address: msg.yiaddr,
      routers: msg.routers ?? [],
      dnsServers: msg.dnsServers ?? [],
      leaseTimeSec,
      renewalTimeSec: msg.renewalTimeSec ?? (infinite ? INFINITE_LEASE_SEC : Math.floor(leaseTimeSec * DEFAULT_T1_FRACTION)),
      rebindingTimeSec: msg.rebindingTimeSec ?? (infinite ? INFINITE_LEASE_SEC : Math.floor(leaseTimeSec * DEFAULT_T2_FRACTION)),
      leaseStartMs: now,
      expiresAtMs: infinite ? null : now + leaseTimeSec * 1000,
      lastSeenMs: now,
      version: 0,
    };
    assign(next, 'subnetMask', msg.subnetMask);
    assign(next, 'domainName', msg.domainName);
    assign(next, 'hostname', msg.hostname ?? pending?.hostname ?? (existing?.state === 'bound' ? existing.hostname : undefined));
    assign(next, 'serverId', msg.serverId);
    assign(next, 'clientId', msg.clientId ?? pending?.clientId ?? (existing?.state === 'bound' ? existing.clientId : undefined));
    assign(next, 'relayAgentInfo', msg.relayAgentInfo);
    assign(next, 'vlanId', ctx.vlanId !== undefined && ctx.vlanId >= 0 ? ctx.vlanId : undefined);
    this.pending.delete(mac);

    const last = this.lastAck.get(mac);
    this.lastAck.set(mac, { xid: msg.xid, t1: next.renewalTimeSec, t2: next.rebindingTimeSec, atMs: now });
    if (!existing || existing.state !== 'bound') return this.store(next, 'bound');
    const changedFields = MEANINGFUL_FIELDS.filter((f) => !sameValue(existing[f], next[f]));
    const duplicate =
      last !== undefined &&
      last.xid === msg.xid &&
      last.t1 === next.renewalTimeSec &&
      last.t2 === next.rebindingTimeSec &&
      now - last.atMs < DUPLICATE_ACK_WINDOW_MS;
    if (changedFields.length === 0 && duplicate) {
      this.lastAck.set(mac, last);
      return undefined;
    }
    const previous = cloneLease(existing);
    if (changedFields.length > 0) return this.store(next, 'changed', previous, changedFields);
    return this.store(next, 'renewed', previous);
  }

  private end(lease: DhcpLease, state: 'released' | 'expired', reason: LeaseEndReason): LeaseChangeEvent {
    const next: DhcpLease = { ...cloneLease(lease), state, endReason: reason, lastSeenMs: this.clock.nowMs() };
    this.lastAck.delete(lease.mac);
    return this.store(next, state === 'expired' ? 'expired' : 'released');
  }

  private store(lease: DhcpLease, kind: LeaseChangeKind, previous?: DhcpLease, changedFields?: string[]): LeaseChangeEvent {
    lease.version = ++this.sequence;
    this.leases.set(lease.mac, lease);
    const event: LeaseChangeEvent = { kind, mac: lease.mac, version: lease.version, lease: cloneLease(lease) };
    if (previous) event.previous = previous;
    if (changedFields) event.changedFields = [...changedFields];
    for (const listener of this.listeners) listener(event);
    return event;
  }

  /** Plain JSON/msgpack-safe snapshot (G16). */
  save(): LeaseTableState {
    return { version: LEASE_TABLE_STATE_VERSION, sequence: this.sequence, leases: this.list() };
  }

  /** Rebuilds a table from save(); throws InvalidArgumentError naming the first bad field. */
  static restore(deps: { clock?: Clock }, state: unknown): DhcpLeaseTable {
    const s = state as Partial<LeaseTableState> | null;
    if (!s || typeof s !== 'object') throw new InvalidArgumentError('state', 'must be an object');
    if (s.version !== LEASE_TABLE_STATE_VERSION) {
      throw new InvalidArgumentError('state.version', `unsupported ${String(s.version)}, expected ${LEASE_TABLE_STATE_VERSION}`);
    }
    if (!Array.isArray(s.leases)) throw new InvalidArgumentError('state.leases', 'must be an array');
    const table = new DhcpLeaseTable(deps.clock ?? systemClock);
    let maxVersion = 0;
    s.leases.forEach((raw, i) => {
      const lease = validateLease(raw, `state.leases[${i}]`);
      table.leases.set(lease.mac, lease);
      maxVersion = Math.max(maxVersion, lease.version);
    });
    const seq = typeof s.sequence === 'number' && Number.isSafeInteger(s.sequence) ? s.sequence : 0;
    table.sequence = Math.max(seq, maxVersion);
    return table;
  }
}

function validateLease(raw: unknown, path: string): DhcpLease {
  if (!raw || typeof raw !== 'object') throw new InvalidArgumentError(path, 'must be an object');
  const l = raw as DhcpLease;
  const mac = typeof l.mac === 'string' ? normalizeMac(l.mac) : undefined;
  if (!mac) throw new InvalidArgumentError(`${path}.mac`, 'must be a 6-byte MAC');
  if (l.state !== 'bound' && l.state !== 'released' && l.state !== 'expired') {
    throw new InvalidArgumentError(`${path}.state`, 'must be bound, released or expired');
  }
  if (typeof l.address !== 'string' || parseIpv4(l.address) === undefined) throw new InvalidArgumentError(`${path}.address`, 'must be IPv4');
  for (const f of ['routers', 'dnsServers'] as const) {
    if (!Array.isArray(l[f]) || !l[f].every((a) => typeof a === 'string' && parseIpv4(a) !== undefined)) {
      throw new InvalidArgumentError(`${path}.${f}`, 'must be a list of IPv4 addresses');
    }
  }
  for (const f of ['leaseTimeSec', 'renewalTimeSec', 'rebindingTimeSec', 'leaseStartMs', 'lastSeenMs', 'version'] as const) {
    if (typeof l[f] !== 'number' || !Number.isFinite(l[f]) || l[f] < 0) throw new InvalidArgumentError(`${path}.${f}`, 'must be a number >= 0');
  }
  if (l.expiresAtMs !== null && (typeof l.expiresAtMs !== 'number' || !Number.isFinite(l.expiresAtMs))) {
    throw new InvalidArgumentError(`${path}.expiresAtMs`, 'must be a number or null');
  }
  return cloneLease({ ...l, mac });
}

function assign<K extends keyof DhcpLease>(lease: DhcpLease, key: K, value: DhcpLease[K] | undefined): void {
  if (value !== undefined) lease[key] = value;
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a === null || b === null) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}

function cloneLease(l: DhcpLease): DhcpLease {
  const c: DhcpLease = { ...l, routers: [...l.routers], dnsServers: [...l.dnsServers] };
  if (l.relayAgentInfo) c.relayAgentInfo = { ...l.relayAgentInfo, subOptions: l.relayAgentInfo.subOptions.map((s) => ({ ...s })) };
  return c;
}

// createNetlinkTables(): one rtnetlink socket shared by every kernel-table adapter of IP activation.
import { createRtNetlink } from 'netlink';
import { SerialQueue } from '../../shared/serial-queue';
import { DEFAULT_NETLINK_TIMEOUT_MS, type NetlinkContext } from './netlink-call';
import { NetlinkAddressTable } from './netlink-address-table';
import { NetlinkFdbTable } from './netlink-fdb-table';
import { NetlinkLinkInfo } from './netlink-link-info';
import { NetlinkNeighborTable } from './netlink-neighbor-table';
import { NetlinkRouteTable } from './netlink-route-table';
import type { NetTables } from './ports';

export interface NetlinkTablesOptions {
  /** Per-request timeout (default DEFAULT_NETLINK_TIMEOUT_MS). */
  timeoutMs?: number;
}

export interface NetlinkTables extends NetTables {
  /** Closes the rtnetlink socket; the tables are unusable afterwards. */
  close(): void;
}

/** Opens an rtnetlink socket in the caller's network namespace. Writes need CAP_NET_ADMIN. */
export function createNetlinkTables(options: NetlinkTablesOptions = {}): NetlinkTables {
  // Buffer sizes are required by the typings; 0 keeps the kernel defaults.
  const socket = createRtNetlink({ recvBufferSize: 0, sendBufferSize: 0 });
  const ctx: NetlinkContext = { socket, timeoutMs: options.timeoutMs ?? DEFAULT_NETLINK_TIMEOUT_MS, queue: new SerialQueue() };
  const links = new NetlinkLinkInfo(ctx);
  return {
    links,
    addresses: new NetlinkAddressTable(ctx, links),
    routes: new NetlinkRouteTable(ctx, links),
    neighbors: new NetlinkNeighborTable(ctx, links),
    fdb: new NetlinkFdbTable(ctx, links),
    close: () => socket.socket.close(),
  };
}

// Reads the kernel tables to tell whether an activation's state is present on this host.
import type { IpActivationSpec } from '../net/ip-activation-spec';
import type { NetTables } from '../net/ports';

export async function isActivated(tables: NetTables, spec: IpActivationSpec): Promise<boolean> {
  switch (spec.mode) {
    case 'address':
      return (await tables.addresses.list(spec.interface)).some((a) => a.address === spec.address);
    case 'routed':
      return spec.tap !== undefined && (await tables.routes.hasHostRoute({ destination: spec.address, device: spec.tap }));
    case 'bridged':
      // One neighbour entry asked for, not the whole table (reconciliation probes every VM).
      return spec.mac !== undefined && (await tables.neighbors.hasPermanent({ interface: spec.interface, address: spec.address, mac: spec.mac }));
  }
}

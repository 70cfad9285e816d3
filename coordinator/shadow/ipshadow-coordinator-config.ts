// The coordinator's `ipshadow` config section: shadow placement policy, sweep intervals and the
// lease backend.
import type { ConfigReader } from '../../shared/config-reader';

export interface IpShadowCoordinatorConfig {
  shadowingThreshold: number;
  maxShadowedVms: number;
  shadowingRefreshIntervalMs: number;
  reconcileIntervalMs: number;
  /** False: rank on capacity only (lab hosts sharing one machine report its load as theirs). */
  placementUsesHostLoad: boolean;
  leaseBackend: 'builtin' | 'kea';
  kea: { controlSocket: string; subnetId: number };
}

export function parseIpShadowCoordinatorConfig(r: ConfigReader, raw: unknown, path: string): IpShadowCoordinatorConfig {
  const m = r.mapping(raw, path, ['shadowing_threshold', 'max_shadowed_vms', 'shadowing_refresh_interval_ms', 'reconcile_interval_ms', 'placement_uses_host_load', 'lease_backend', 'kea']);
  const leaseBackend = r.string(m, 'lease_backend', path, { default: 'builtin', oneOf: ['builtin', 'kea'] }) as 'builtin' | 'kea';
  const k = r.mapping(m.kea, `${path}.kea`, ['control_socket', 'subnet_id']);
  return {
    shadowingThreshold: r.number(m, 'shadowing_threshold', path, { default: 0.3, min: 0, max: 1 }),
    maxShadowedVms: r.integer(m, 'max_shadowed_vms', path, { default: 2, min: 0, max: 64 }),
    shadowingRefreshIntervalMs: r.integer(m, 'shadowing_refresh_interval_ms', path, { default: 10_000, min: 100 }),
    reconcileIntervalMs: r.integer(m, 'reconcile_interval_ms', path, { default: 15_000, min: 100 }),
    placementUsesHostLoad: r.boolean(m, 'placement_uses_host_load', path, { default: true }),
    leaseBackend,
    kea: {
      controlSocket: leaseBackend === 'kea' ? r.string(k, 'control_socket', `${path}.kea`) : r.string(k, 'control_socket', `${path}.kea`, { default: '' }),
      subnetId: r.integer(k, 'subnet_id', `${path}.kea`, { default: 0, min: 0 }),
    },
  };
}

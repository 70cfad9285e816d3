// keepalived.conf for one VRRP peer of the bench (pure text builder).

export interface KeepalivedPeer {
  routerId: string;
  initialState: 'MASTER' | 'BACKUP';
  priority: number;
  interfaceName: string;
  virtualRouterId: number;
  /** Seconds; below 1 needs VRRPv3. */
  advertIntervalS: number;
  vrrpVersion: 2 | 3;
  /** e.g. '10.78.0.100/24'. */
  virtualAddress: string;
}

export function keepalivedConfig(p: KeepalivedPeer): string {
  return `global_defs {
  router_id ${p.routerId}
  vrrp_version ${p.vrrpVersion}
  # One GARP burst at takeover (defaults), no delayed second burst: it cannot shorten the gap.
  vrrp_garp_master_delay 0
}
vrrp_instance umbra_bench {
  state ${p.initialState}
  interface ${p.interfaceName}
  virtual_router_id ${p.virtualRouterId}
  priority ${p.priority}
  advert_int ${p.advertIntervalS}
  virtual_ipaddress {
    ${p.virtualAddress} dev ${p.interfaceName}
  }
}
`;
}

// DHCPv4 option codes, message types and BOOTP layout constants (RFC 2131, 2132, 3046, 3396).

export const DhcpOption = {
  PAD: 0,
  SUBNET_MASK: 1,
  ROUTER: 3,
  DNS_SERVERS: 6,
  HOSTNAME: 12,
  DOMAIN_NAME: 15,
  REQUESTED_ADDRESS: 50,
  LEASE_TIME: 51,
  OVERLOAD: 52,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  PARAMETER_REQUEST_LIST: 55,
  MAX_MESSAGE_SIZE: 57,
  RENEWAL_TIME: 58,
  REBINDING_TIME: 59,
  CLIENT_ID: 61,
  RELAY_AGENT_INFO: 82,
  END: 255,
} as const;

export const DhcpMessageType = {
  DISCOVER: 1,
  OFFER: 2,
  REQUEST: 3,
  DECLINE: 4,
  ACK: 5,
  NAK: 6,
  RELEASE: 7,
  INFORM: 8,
} as const;

const MESSAGE_TYPE_NAMES: Record<number, string> = {
  1: 'DISCOVER',
  2: 'OFFER',
  3: 'REQUEST',
  4: 'DECLINE',
  5: 'ACK',
  6: 'NAK',
  7: 'RELEASE',
  8: 'INFORM',
};

/** 'ACK', 'NAK', ...; 'TYPE_<n>' for types this agent does not know (lease query etc.). */
export function messageTypeName(type: number): string {
  return MESSAGE_TYPE_NAMES[type] ?? `TYPE_${type}`;
}

/** Relay agent information (option 82) sub-option codes (RFC 3046). */
export const RelaySubOption = {
  CIRCUIT_ID: 1,
  REMOTE_ID: 2,
} as const;

export const BOOTP_REQUEST = 1;
export const BOOTP_REPLY = 2;
export const DHCP_MAGIC_COOKIE = 0x63825363;
export const DHCP_SERVER_PORT = 67;
export const DHCP_CLIENT_PORT = 68;

/** Byte offsets inside the BOOTP header. */
export const BootpOffset = {
  OP: 0,
  HTYPE: 1,
  HLEN: 2,
  HOPS: 3,
  XID: 4,
  SECS: 8,
  FLAGS: 10,
  CIADDR: 12,
  YIADDR: 16,
  SIADDR: 20,
  GIADDR: 24,
  CHADDR: 28,
  SNAME: 44,
  FILE: 108,
  MAGIC: 236,
  OPTIONS: 240,
} as const;

export const SNAME_BYTES = 64;
export const FILE_BYTES = 128;
export const CHADDR_BYTES = 16;

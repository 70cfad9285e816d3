// The one error the DHCP frame and packet decoders throw, with a machine-readable code per reason.
import { UmbraError } from '../../shared/errors';

/**
 * Why a frame or DHCP message was rejected. The sniffer counts drops per code, so these are
 * stable identifiers (metrics labels), not prose.
 */
export type DhcpDecodeErrorCode =
  /** The bytes end before a header, field or option they announce. */
  | 'TRUNCATED'
  /** The message is larger than any DHCP message we accept (MAX_DHCP_MESSAGE_BYTES). */
  | 'OVERSIZED'
  /** The four bytes after the BOOTP header are not 99.130.83.99. */
  | 'BAD_MAGIC'
  /** BOOTP op, htype/hlen or another fixed header field is out of range. */
  | 'BAD_HEADER'
  /** An option's length is impossible for its type, or runs past the field that holds it. */
  | 'BAD_OPTION_LENGTH'
  /** Option 52 (overload) has a value other than 1, 2 or 3, or appears outside the options field. */
  | 'BAD_OVERLOAD'
  /** The options field has no END (255) option. */
  | 'MISSING_END'
  /** More options than MAX_OPTION_COUNT: no real client sends that many. */
  | 'TOO_MANY_OPTIONS'
  /** Ethernet type is neither IPv4 nor an 802.1Q/802.1ad tag carrying IPv4. */
  | 'NOT_IPV4'
  /** IPv4 header version, IHL, total length or checksum is wrong. */
  | 'BAD_IP_HEADER'
  /** A fragment of a larger IPv4 datagram: a DHCP message cannot be decoded from it. */
  | 'IP_FRAGMENT'
  /** IPv4 protocol is not UDP. */
  | 'NOT_UDP'
  /** UDP length field disagrees with the IPv4 datagram. */
  | 'BAD_UDP_LENGTH'
  /** Neither UDP port is 67 or 68. */
  | 'NOT_DHCP_PORT';

export const DHCP_DECODE_ERROR_CODES: readonly DhcpDecodeErrorCode[] = [
  'TRUNCATED',
  'OVERSIZED',
  'BAD_MAGIC',
  'BAD_HEADER',
  'BAD_OPTION_LENGTH',
  'BAD_OVERLOAD',
  'MISSING_END',
  'TOO_MANY_OPTIONS',
  'NOT_IPV4',
  'BAD_IP_HEADER',
  'IP_FRAGMENT',
  'NOT_UDP',
  'BAD_UDP_LENGTH',
  'NOT_DHCP_PORT',
];

/** Raised for bytes that are not a well-formed DHCP frame or message; `offset` is where it went wrong. */
export class DhcpDecodeError extends UmbraError {
  readonly code: DhcpDecodeErrorCode;
  readonly offset: number;
  constructor(code: DhcpDecodeErrorCode, offset: number, detail?: string) {
    super('INVALID_ARGUMENT', `DHCP decode failed: ${code} at byte ${offset}${detail ? ` (${detail})` : ''}`);
    this.name = 'DhcpDecodeError';
    this.code = code;
    this.offset = offset;
  }
}

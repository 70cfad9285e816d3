// Address-family numbers of rtnetlink (the `netlink` package exports none) and text <-> bytes helpers.
import { InvalidArgumentError } from '../../shared/errors';
import { parseIp, parseMac, type ParsedIp } from '../../shared/ip-address';

export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_BRIDGE = 7;
/** The main routing table (RT_TABLE_MAIN). */
export const MAIN_TABLE = 254;

export function kernelFamily(ip: ParsedIp): number {
  return ip.family === 4 ? AF_INET : AF_INET6;
}

/** Parses `text` as an IP address or throws InvalidArgumentError naming `field`. */
export function requireIp(field: string, text: string): ParsedIp {
  const ip = parseIp(text);
  if (!ip) throw new InvalidArgumentError(field, `'${text}' is not an IPv4 or IPv6 address`);
  return ip;
}

/** Parses `text` as a MAC address or throws InvalidArgumentError naming `field`. */
export function requireMac(field: string, text: string): Buffer {
  const mac = parseMac(text);
  if (!mac) throw new InvalidArgumentError(field, `'${text}' is not a MAC address (aa:bb:cc:dd:ee:ff)`);
  return mac;
}

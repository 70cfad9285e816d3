// "host:port" and "[v6]:port" endpoints (as config and registrations write them) split into parts.

export interface HostPort {
  /** Without the brackets of an IPv6 literal. */
  host: string;
  port: number;
}

/** Splits at the last colon; the caller has validated the form (config reader, registration). */
export function splitHostPort(endpoint: string): HostPort {
  const i = endpoint.lastIndexOf(':');
  return { host: endpoint.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(endpoint.slice(i + 1)) };
}

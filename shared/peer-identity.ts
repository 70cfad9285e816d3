// Who is on the other end of an mTLS connection: the role and name carried in the certificate's
// URI SAN (umbra://<role>/<name>), as issued by `umbractl pki issue`.

export type PeerRole = 'coordinator' | 'agent' | 'operator';

export const PEER_ROLES: readonly PeerRole[] = ['coordinator', 'agent', 'operator'];

export interface PeerIdentity {
  role: PeerRole;
  /** Host id for agents, a person's or tool's name for operators, the cluster name for the coordinator. */
  name: string;
}

const IDENTITY_URI = /^umbra:\/\/(coordinator|agent|operator)\/([A-Za-z0-9][A-Za-z0-9._@-]{0,62})$/;

export function identityUri(id: PeerIdentity): string {
  return `umbra://${id.role}/${id.name}`;
}

export function formatIdentity(id: PeerIdentity): string {
  return `${id.role}/${id.name}`;
}

/**
 * Reads the identity from a subjectAltName string as Node reports it
 * ("URI:umbra://agent/host-a, DNS:host-a"). Returns undefined when there is none or more than one.
 */
export function identityFromSubjectAltName(san: string | undefined): PeerIdentity | undefined {
  if (!san) return undefined;
  const found: PeerIdentity[] = [];
  for (const part of san.split(/,\s*/)) {
    if (!part.startsWith('URI:')) continue;
    const m = IDENTITY_URI.exec(part.slice(4));
    if (m) found.push({ role: m[1] as PeerRole, name: m[2] });
  }
  return found.length === 1 ? found[0] : undefined;
}

/** Valid names for identities (host ids share this rule). */
export const IDENTITY_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,62}$/;

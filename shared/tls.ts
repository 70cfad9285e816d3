// mTLS credentials for every connection: servers demand a client certificate from the cluster
// CA; clients check that the server carries the identity they meant to reach.
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { InvalidConfigError } from './errors';
import { type PeerIdentity, type PeerRole, formatIdentity, identityFromSubjectAltName } from './peer-identity';
import { describeCertificate } from './certificate-info';

export interface TlsPaths {
  ca: string;
  cert: string;
  key: string;
}

export interface TlsMaterial {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
  /** The identity in our own certificate. */
  identity: PeerIdentity;
  notAfterMs: number;
}

/** Reads and checks the files; a missing or wrong file is a config error naming the key. */
export function loadTlsMaterial(paths: TlsPaths, source = 'tls'): TlsMaterial {
  const problems: Array<{ path: string; reason: string }> = [];
  const read = (key: keyof TlsPaths): Buffer => {
    try {
      return readFileSync(paths[key]);
    } catch (err) {
      problems.push({ path: `tls.${key}`, reason: `cannot read ${paths[key]}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` });
      return Buffer.alloc(0);
    }
  };
  const ca = read('ca');
  const cert = read('cert');
  const key = read('key');
  let identity: PeerIdentity | undefined;
  let notAfterMs = 0;
  if (cert.length > 0) {
    try {
      const d = describeCertificate(cert);
      identity = identityFromSubjectAltName(d.subjectAltName);
      notAfterMs = d.notAfterMs;
      if (!identity) problems.push({ path: 'tls.cert', reason: 'certificate carries no umbra:// identity (issue it with umbractl pki issue)' });
    } catch (err) {
      problems.push({ path: 'tls.cert', reason: (err as Error).message });
    }
  }
  if (problems.length > 0 || !identity) throw new InvalidConfigError(source, problems);
  return { ca, cert, key, identity, notAfterMs };
}

/** Server credentials that refuse clients without a certificate from our CA. */
export function serverCredentials(tls: TlsMaterial): grpc.ServerCredentials {
  return grpc.ServerCredentials.createSsl(tls.ca, [{ private_key: tls.key, cert_chain: tls.cert }], true);
}

/**
 * Client credentials that accept only a server whose certificate carries `expected` (a role, or
 * a role and a name). Host names are not checked: identities are, which survives re-addressing.
 */
export function channelCredentials(tls: TlsMaterial, expected: { role: PeerRole; name?: string }): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(tls.ca, tls.key, tls.cert, {
    checkServerIdentity: (_host, cert) => {
      const id = identityFromSubjectAltName(cert.subjectaltname);
      if (!id || id.role !== expected.role || (expected.name !== undefined && id.name !== expected.name)) {
        const want = expected.name ? `${expected.role}/${expected.name}` : expected.role;
        return new Error(`server identity ${id ? formatIdentity(id) : '(none)'} is not the expected ${want}`);
      }
      return undefined;
    },
  });
}

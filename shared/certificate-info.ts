// Reads identity and expiry from a PEM certificate with Node's own X.509 parser (cheap to load:
// the daemons must not pull in the certificate-issuing library just to read their own cert).
import { X509Certificate } from 'node:crypto';
import { UmbraError } from './errors';

export function describeCertificate(pem: string | Buffer): { subjectAltName: string; notAfterMs: number } {
  try {
    const cert = new X509Certificate(pem);
    return { subjectAltName: cert.subjectAltName ?? '', notAfterMs: Date.parse(cert.validTo) };
  } catch (err) {
    throw new UmbraError('INVALID_ARGUMENT', `not a PEM certificate: ${(err as Error).message}`, { cause: err });
  }
}

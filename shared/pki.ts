// The cluster's certificate authority: creates the CA and issues certificates whose URI SAN
// carries the holder's identity (coordinator, agent/<host id>, operator/<name>). ECDSA P-256.
import 'reflect-metadata'; // @peculiar/x509's dependency injection needs it loaded first
import { randomBytes, webcrypto, KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import { FailedPreconditionError, InvalidArgumentError } from './errors';
import { IDENTITY_NAME, type PeerIdentity, identityUri } from './peer-identity';

x509.cryptoProvider.set(webcrypto as never);

const SIGNING = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
export const DEFAULT_CA_VALID_DAYS = 3650;
export const DEFAULT_CERT_VALID_DAYS = 825;
const DAY_MS = 86_400_000;

export const CA_CERT_FILE = 'ca.crt';
export const CA_KEY_FILE = 'ca.key';

export interface IssuedFiles {
  certPath: string;
  keyPath: string;
}

function serial(): string {
  // Positive 16-byte serial: clear the top bit.
  const b = randomBytes(16);
  b[0] &= 0x7f;
  return b.toString('hex');
}

async function exportKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  return KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }) as string;
}

function writeSecret(file: string, content: string): void {
  writeFileSync(file, content, { mode: 0o600 });
}

/** Creates a new CA in `dir`. Refuses to overwrite an existing one (that would orphan every issued cert). */
export async function createCa(dir: string, opts: { commonName?: string; validDays?: number } = {}): Promise<IssuedFiles> {
  const certPath = path.join(dir, CA_CERT_FILE);
  const keyPath = path.join(dir, CA_KEY_FILE);
  if (existsSync(certPath) || existsSync(keyPath)) {
    throw new FailedPreconditionError(`a CA already exists in ${dir}; remove it first if you really mean to replace it`);
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const keys = await webcrypto.subtle.generateKey(SIGNING, true, ['sign', 'verify']);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${opts.commonName ?? 'Umbra cluster CA'}`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + (opts.validDays ?? DEFAULT_CA_VALID_DAYS) * DAY_MS),
    signingAlgorithm: SIGNING,
    keys: keys as never,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  writeFileSync(certPath, cert.toString('pem') + '\n');
  writeSecret(keyPath, await exportKeyPem(keys.privateKey));
  return { certPath, keyPath };
}

export interface IssueOptions {
  caDir: string;
  identity: PeerIdentity;
  outDir: string;
  /** DNS names and IP addresses to add as SANs (for clients that check host names). */
  dnsNames?: string[];
  ipAddresses?: string[];
  validDays?: number;
  /** File name stem; default `<role>-<name>` (`coordinator` for the coordinator). */
  stem?: string;
}

/** Issues a certificate and key for `identity`, signed by the CA in `caDir`. */
export async function issueCertificate(opts: IssueOptions): Promise<IssuedFiles> {
  if (!IDENTITY_NAME.test(opts.identity.name)) {
    throw new InvalidArgumentError('name', `must be 1-63 letters, digits, '.', '_', '@' or '-', got '${opts.identity.name}'`);
  }
  let caCertPem: string;
  let caKeyPem: string;
  try {
    caCertPem = readFileSync(path.join(opts.caDir, CA_CERT_FILE), 'utf8');
    caKeyPem = readFileSync(path.join(opts.caDir, CA_KEY_FILE), 'utf8');
  } catch (err) {
    throw new FailedPreconditionError(`no CA in ${opts.caDir} (run 'umbractl pki init' first)`, { cause: err });
  }
  const caCert = new x509.X509Certificate(caCertPem);
  const caKey = await webcrypto.subtle.importKey(
    'pkcs8',
    pemBody(caKeyPem),
    SIGNING,
    false,
    ['sign'],
  );
  const keys = await webcrypto.subtle.generateKey(SIGNING, true, ['sign', 'verify']);
  const now = Date.now();
  const names: x509.JsonGeneralName[] = [{ type: 'url', value: identityUri(opts.identity) }];
  for (const dns of opts.dnsNames ?? []) names.push({ type: 'dns', value: dns });
  for (const ip of opts.ipAddresses ?? []) names.push({ type: 'ip', value: ip });
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${opts.identity.role}/${opts.identity.name}`,
    issuer: caCert.subject,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + (opts.validDays ?? DEFAULT_CERT_VALID_DAYS) * DAY_MS),
    signingAlgorithm: SIGNING,
    publicKey: keys.publicKey as never,
    signingKey: caKey as never,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(names),
    ],
  });
  mkdirSync(opts.outDir, { recursive: true });
  const stem = opts.stem ?? (opts.identity.role === 'coordinator' ? 'coordinator' : `${opts.identity.role}-${opts.identity.name}`);
  const certPath = path.join(opts.outDir, `${stem}.crt`);
  const keyPath = path.join(opts.outDir, `${stem}.key`);
  writeFileSync(certPath, cert.toString('pem') + '\n');
  writeSecret(keyPath, await exportKeyPem(keys.privateKey));
  return { certPath, keyPath };
}

function pemBody(pem: string): ArrayBuffer {
  const b64 = pem.replace(/-----(BEGIN|END) [^-]+-----/g, '').replace(/\s+/g, '');
  const buf = Buffer.from(b64, 'base64');
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
}

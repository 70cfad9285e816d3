// A throw-away cluster PKI for tests: CA, coordinator, agents, an operator, and an agent
// certificate from a foreign CA.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createCa, issueCertificate } from '../../shared/pki';
import type { TlsPaths } from '../../shared/tls';

export interface PkiFixture {
  dir: string;
  ca: string;
  coordinator: TlsPaths;
  operator: TlsPaths;
  agent(hostId: string): TlsPaths;
  /** An agent certificate for `hostId` signed by a different CA (its own CA file included). */
  foreignAgent: TlsPaths;
  cleanup(): void;
}

export async function createPkiFixture(agentIds: string[], foreignAgentId = 'intruder'): Promise<PkiFixture> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'umbra-pki-'));
  const caDir = path.join(dir, 'ca');
  await createCa(caDir);
  const ca = path.join(caDir, 'ca.crt');
  const issue = async (role: 'coordinator' | 'agent' | 'operator', name: string): Promise<TlsPaths> => {
    const f = await issueCertificate({ caDir, identity: { role, name }, outDir: dir });
    return { ca, cert: f.certPath, key: f.keyPath };
  };
  const coordinator = await issue('coordinator', 'coordinator');
  const operator = await issue('operator', 'tester');
  const agents = new Map<string, TlsPaths>();
  for (const id of agentIds) agents.set(id, await issue('agent', id));
  const otherCaDir = path.join(dir, 'other-ca');
  await createCa(otherCaDir, { commonName: 'Somebody else' });
  const foreign = await issueCertificate({ caDir: otherCaDir, identity: { role: 'agent', name: foreignAgentId }, outDir: path.join(dir, 'foreign') });
  return {
    dir,
    ca,
    coordinator,
    operator,
    agent: (id) => {
      const a = agents.get(id);
      if (!a) throw new Error(`no certificate issued for agent ${id}`);
      return a;
    },
    // The foreign agent trusts our CA (it wants to reach our coordinator) but holds a cert we never issued.
    foreignAgent: { ca, cert: foreign.certPath, key: foreign.keyPath },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

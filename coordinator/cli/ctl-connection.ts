// How umbractl reaches the coordinator: flags, then environment, then /etc/umbra/umbractl.yaml.
import { existsSync } from 'node:fs';
import { ConfigReader, readYamlFile } from '../../shared/config-reader';
import { dial, type GenericClient } from '../../shared/grpc-client';
import { channelCredentials, loadTlsMaterial, type TlsPaths } from '../../shared/tls';
import { readTlsSection } from '../../shared/tls-config';

export const DEFAULT_CTL_CONFIG_PATH = '/etc/umbra/umbractl.yaml';
const COORDINATOR_SERVICE = 'umbra.coordinator.v1.CoordinatorService';

export interface CtlConnectionFlags {
  config?: string;
  coordinator?: string;
  ca?: string;
  cert?: string;
  key?: string;
}

export interface CtlConnection {
  endpoint: string;
  tls: TlsPaths;
}

export function resolveConnection(flags: CtlConnectionFlags): CtlConnection {
  const configPath = flags.config ?? process.env.UMBRA_CTL_CONFIG ?? DEFAULT_CTL_CONFIG_PATH;
  let fromFile: CtlConnection = { endpoint: '127.0.0.1:7700', tls: { ca: '/etc/umbra/pki/ca.crt', cert: '/etc/umbra/pki/operator.crt', key: '/etc/umbra/pki/operator.key' } };
  if (flags.config || existsSync(configPath)) {
    const r = new ConfigReader(configPath);
    const root = r.mapping(readYamlFile(configPath), '', ['coordinator', 'tls']);
    fromFile = { endpoint: r.hostPort(root, 'coordinator', '', { default: fromFile.endpoint }), tls: readTlsSection(r, root, fromFile.tls) };
    r.finish();
  }
  return {
    endpoint: flags.coordinator ?? process.env.UMBRA_COORDINATOR ?? fromFile.endpoint,
    tls: {
      ca: flags.ca ?? process.env.UMBRA_CA ?? fromFile.tls.ca,
      cert: flags.cert ?? process.env.UMBRA_CERT ?? fromFile.tls.cert,
      key: flags.key ?? process.env.UMBRA_KEY ?? fromFile.tls.key,
    },
  };
}

export function dialCoordinator(conn: CtlConnection): GenericClient {
  const tls = loadTlsMaterial(conn.tls, 'umbractl');
  return dial(COORDINATOR_SERVICE, conn.endpoint, channelCredentials(tls, { role: 'coordinator' }));
}

// The `tls` section both programs' configs share.
import type { ConfigReader, Mapping } from './config-reader';
import type { TlsPaths } from './tls';

export function readTlsSection(r: ConfigReader, root: Mapping, defaults: TlsPaths): TlsPaths {
  const m = r.mapping(root.tls, 'tls', ['ca', 'cert', 'key']);
  return {
    ca: r.string(m, 'ca', 'tls', { default: defaults.ca }),
    cert: r.string(m, 'cert', 'tls', { default: defaults.cert }),
    key: r.string(m, 'key', 'tls', { default: defaults.key }),
  };
}

// `umbractl pki init|issue`: the cluster CA and certificates for the coordinator, agents
// (identity = host id) and operators.
import { InvalidArgumentError } from '../../shared/errors';
import { PEER_ROLES, type PeerRole } from '../../shared/peer-identity';
import { createCa, issueCertificate } from '../../shared/pki';

export async function runPkiCommand(args: { sub: string; dir: string; role?: string; name?: string; dns: string[]; ip: string[]; days?: string; out?: string; stem?: string }): Promise<number> {
  if (args.sub === 'init') {
    const files = await createCa(args.dir);
    process.stdout.write(`created CA ${files.certPath} (key ${files.keyPath}, keep it offline or at least root-only)\n`);
    return 0;
  }
  if (args.sub === 'issue') {
    if (!args.role || !PEER_ROLES.includes(args.role as PeerRole)) throw new InvalidArgumentError('--role', `must be one of ${PEER_ROLES.join(', ')}`);
    const role = args.role as PeerRole;
    const name = args.name ?? (role === 'coordinator' ? 'coordinator' : undefined);
    if (!name) throw new InvalidArgumentError('--name', role === 'agent' ? 'is required (the host id)' : 'is required');
    const days = args.days === undefined ? undefined : Number(args.days);
    if (days !== undefined && (!Number.isInteger(days) || days < 1)) throw new InvalidArgumentError('--days', 'must be a positive integer');
    const files = await issueCertificate({ caDir: args.dir, identity: { role, name }, outDir: args.out ?? args.dir, dnsNames: args.dns, ipAddresses: args.ip, validDays: days, stem: args.stem });
    process.stdout.write(`issued ${role}/${name}: ${files.certPath} ${files.keyPath}\n`);
    return 0;
  }
  throw new InvalidArgumentError('pki', `unknown subcommand '${args.sub}' (init or issue)`);
}

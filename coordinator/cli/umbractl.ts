#!/usr/bin/env node
// umbractl: the operator's command-line client of the coordinator's API.
import { parseArgs } from 'node:util';
import { errorMessage, isUmbraError } from '../../shared/errors';
import { programVersion } from '../../shared/version';
import { type CtlConnectionFlags, DEFAULT_CTL_CONFIG_PATH, dialCoordinator, resolveConnection } from './ctl-connection';
import { runEventsCommand } from './events-command';
import { runHostCommand, runHostsCommand, runRemoveHostCommand } from './hosts-command';
import { runPkiCommand } from './pki-command';
import { runMigrateCommand } from './migrate-command';
import { runShadowCommand, runShadowsCommand } from './shadows-command';
import { runReplicationCommand } from './replication-command';
import { runPolicyCommand, runPredictCommand, runPredictionsCommand } from './predict-command';
import { runRankCommand } from './rank-command';

const CONNECTION_HELP = `Connection (flags, else $UMBRA_COORDINATOR/$UMBRA_CA/$UMBRA_CERT/$UMBRA_KEY, else the config file
$UMBRA_CTL_CONFIG or --config):
  --coordinator HOST:PORT   --ca FILE   --cert FILE   --key FILE
  --config FILE             default ${DEFAULT_CTL_CONFIG_PATH} (keys: coordinator, tls.ca, tls.cert, tls.key)
`;

const HELP = `umbractl ${programVersion()}: control Umbra through the coordinator's API

Usage:
  umbractl hosts [--state up,suspect,down] [--json]   list hosts
  umbractl host ID [--json]                           one host's facts
  umbractl remove-host ID                             forget a host
  umbractl events [--follow] [--after SEQ] [--limit N] [--json]
                                                      the audit log
  umbractl shadows [--vm VM] [--json]                 shadows of VMs' IP configs, versions, freshness
  umbractl shadow place|remove VM HOST [--json]       place or remove a shadow by hand
  umbractl migrate VM [--to HOST|best] [--json]       switch the VM over to HOST (needs a ready shadow there);
                                                      best (or no --to): the best-ranked host with a ready
                                                      shadow; prints each step, then the step timings
  umbractl replication [list] [VM] [--vm VM] [--json] memory shadows: tracker, epoch, rate, per shadow ack and lag
  umbractl replication start VM --from HOST --to HOST[,HOST]
                                                      replicate a VM's RAM from its host to shadow hosts
  umbractl replication stop|flush VM                  stop replication / final delta of a paused guest
  umbractl predictions [--vm VM] [--json]             per-VM migration probability, decision and reasons;
                                                      per-host saturation probability and failure risk
  umbractl rank VM [--limit N] [--json]               destinations for VM, best first, with score breakdown
                                                      and reasons; rejected hosts with theirs (exit 1: none)
  umbractl policy get [--json]                        the prediction policy
  umbractl policy set [--automatic true|false] [--threshold X] [--shadowing-threshold X]
                      [--max-shadowed N] [--refresh-ms N] [--default-priority N]
                      [--clear-windows] [--window HH:MM-HH:MM[@DAYS]]... [--priority VM=N]...
                      [--group NAME=keep-apart|keep-together:VM,VM...]... [--remove-group NAME]...
                      [--other-failure-domain all|none|VM,VM...]
                                                      change it (windows in UTC, days 0=Sunday..6;
                                                      a group keeps its VMs on separate hosts, or
                                                      favours hosts holding the others; VMs of
                                                      --other-failure-domain only go to hosts outside
                                                      their source's failure domain)
  umbractl predict evaluate --traces DIR [--horizon MIN] [--folds N] [--json]
                                                      forecast accuracy on traces vs baselines (offline;
                                                      'umbractl predict evaluate --help' for all options)
  umbractl pki init --dir DIR                         create the cluster CA
  umbractl pki issue --dir DIR --role coordinator|agent|operator --name NAME
                     [--dns NAME]... [--ip ADDR]... [--days N] [--out DIR] [--stem NAME]
                                                      issue a certificate (files <stem>.crt/.key;
                                                      default stem <role>-<name>, or 'coordinator';
                                                      --stem agent gives the agent's default names)
  umbractl --version | --help

${CONNECTION_HELP}
Exit codes: 0 ok, 1 the request failed, 2 bad usage.
`;

const OPTIONS = {
  config: { type: 'string' },
  coordinator: { type: 'string' },
  ca: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  json: { type: 'boolean' },
  state: { type: 'string' },
  follow: { type: 'boolean', short: 'f' },
  after: { type: 'string' },
  limit: { type: 'string' },
  dir: { type: 'string' },
  role: { type: 'string' },
  name: { type: 'string' },
  dns: { type: 'string', multiple: true },
  ip: { type: 'string', multiple: true },
  days: { type: 'string' },
  out: { type: 'string' },
  stem: { type: 'string' },
  to: { type: 'string' },
  from: { type: 'string' },
  vm: { type: 'string' },
  automatic: { type: 'string' },
  threshold: { type: 'string' },
  'shadowing-threshold': { type: 'string' },
  'max-shadowed': { type: 'string' },
  'refresh-ms': { type: 'string' },
  'default-priority': { type: 'string' },
  window: { type: 'string', multiple: true },
  priority: { type: 'string', multiple: true },
  'clear-windows': { type: 'boolean' },
  group: { type: 'string', multiple: true },
  'remove-group': { type: 'string', multiple: true },
  'other-failure-domain': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
} as const;

/** `umbractl CMD --help`: the usage entries of CMD from HELP (with their continuation lines). */
function commandHelp(command: string): string | undefined {
  const lines = HELP.split('\n');
  const out: string[] = [];
  let inEntry = false;
  for (const line of lines) {
    if (/^  umbractl /.test(line)) inEntry = line.startsWith(`  umbractl ${command} `) || line === `  umbractl ${command}`;
    else if (!/^ {3,}\S/.test(line)) inEntry = false;
    if (inEntry) out.push(line);
  }
  if (out.length === 0) return undefined;
  const offline = command === 'pki';
  return `Usage:\n${out.join('\n')}\n${offline ? '' : `\n${CONNECTION_HELP}`}\nExit codes: 0 ok, 1 the request failed, 2 bad usage.\n`;
}

function usage(message: string): never {
  process.stderr.write(`umbractl: ${message}\n\nRun 'umbractl --help' for usage.\n`);
  process.exit(2);
}

async function main(): Promise<number> {
  // Offline and with options of its own: not parsed against the connection flags.
  if (process.argv[2] === 'predict') return runPredictCommand(process.argv.slice(3));
  let parsed;
  try {
    parsed = parseArgs({ allowPositionals: true, options: OPTIONS });
  } catch (err) {
    usage(errorMessage(err));
  }
  const { values: v, positionals } = parsed;
  const perCommand = v.help && positionals.length > 0 ? commandHelp(positionals[0]) : undefined;
  if (perCommand) {
    process.stdout.write(perCommand);
    return 0;
  }
  if (v.help || positionals.length === 0) {
    process.stdout.write(HELP);
    return v.help ? 0 : 2;
  }
  if (v.version) {
    process.stdout.write(`${programVersion()}\n`);
    return 0;
  }
  const [command, ...rest] = positionals;
  const json = v.json === true;
  if (command === 'pki') {
    if (!v.dir) usage('pki needs --dir DIR');
    return runPkiCommand({ sub: rest[0] ?? '', dir: v.dir, role: v.role, name: v.name, dns: v.dns ?? [], ip: v.ip ?? [], days: v.days, out: v.out, stem: v.stem });
  }
  const connect = () => dialCoordinator(resolveConnection(v as CtlConnectionFlags));
  switch (command) {
    case 'hosts':
      return runHostsCommand(connect(), { json, state: v.state });
    case 'host':
      if (!rest[0]) usage('host needs a host id');
      return runHostCommand(connect(), rest[0], { json });
    case 'remove-host':
      if (!rest[0]) usage('remove-host needs a host id');
      return runRemoveHostCommand(connect(), rest[0]);
    case 'events': {
      const after = Number(v.after ?? 0);
      const limit = Number(v.limit ?? 100);
      if (!Number.isInteger(after) || after < 0) usage('--after must be a non-negative integer');
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) usage('--limit must be 1..1000');
      return runEventsCommand(connect(), { json, follow: v.follow === true, after, limit });
    }
    case 'shadows':
      return runShadowsCommand(resolveConnection(v as CtlConnectionFlags), { json, vm: v.vm });
    case 'shadow':
      if ((rest[0] !== 'place' && rest[0] !== 'remove') || !rest[1] || !rest[2]) usage('usage: shadow place|remove VM HOST');
      return runShadowCommand(resolveConnection(v as CtlConnectionFlags), rest[0], rest[1], rest[2], { json });
    case 'migrate':
      if (!rest[0]) usage('usage: migrate VM [--to HOST|best]');
      return runMigrateCommand(resolveConnection(v as CtlConnectionFlags), rest[0], v.to, { json });
    case 'replication':
      if (rest[0] && !['list', 'start', 'stop', 'flush'].includes(rest[0])) usage('usage: replication [list|start|stop|flush] ...');
      return runReplicationCommand(resolveConnection(v as CtlConnectionFlags), { sub: rest[0], vm: rest[1] ?? v.vm, from: v.from, to: v.to, json });
    case 'predictions':
      return runPredictionsCommand(resolveConnection(v as CtlConnectionFlags), { json, vm: v.vm });
    case 'rank': {
      if (!rest[0]) usage('usage: rank VM [--limit N] [--json]');
      const limit = Number(v.limit ?? 0);
      if (!Number.isInteger(limit) || limit < 0) usage('--limit must be a non-negative integer');
      return runRankCommand(resolveConnection(v as CtlConnectionFlags), rest[0], { json, limit });
    }
    case 'policy':
      if (rest[0] !== 'get' && rest[0] !== 'set') usage('usage: policy get|set [flags]');
      return runPolicyCommand(
        resolveConnection(v as CtlConnectionFlags),
        rest[0],
        {
          automatic: v.automatic,
          threshold: v.threshold,
          shadowingThreshold: v['shadowing-threshold'],
          maxShadowed: v['max-shadowed'],
          refreshMs: v['refresh-ms'],
          defaultPriority: v['default-priority'],
          window: v.window,
          priority: v.priority,
          clearWindows: v['clear-windows'] === true,
          group: v.group,
          removeGroup: v['remove-group'],
          otherFailureDomain: v['other-failure-domain'],
        },
        { json },
      );
    default:
      usage(`unknown command '${command}'`);
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    const reason = isUmbraError(err) ? ` (${err.reason})` : '';
    process.stderr.write(`umbractl: ${errorMessage(err)}${reason}\n`);
    process.exit(isUmbraError(err) && err.reason === 'INVALID_ARGUMENT' && /^--/.test(errorMessage(err)) ? 2 : 1);
  },
);

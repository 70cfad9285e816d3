// `umbractl predict evaluate`: argument parsing and output of the trace evaluation. The caller
// (umbractl) passes the arguments after "predict evaluate" and exits with the returned code.

import { errorMessage, isUmbraError } from '../../shared/errors';
import { evaluateTraces } from './evaluate';

export const EVALUATE_USAGE = `usage: umbractl predict evaluate --traces DIR [--horizon MIN] [--folds N] [--trees N] [--no-candidates] [--require-targets] [--json]
  --traces DIR        folder of traces, one file per VM, lines "cpu% mem%" every 5 minutes
  --horizon MIN       forecast horizon in minutes (default 30)
  --folds N           k-fold by job: the global model is fitted on the other folds (default 5)
  --trees N           trees per boosted model (default 120; fewer is faster)
  --no-candidates     leave the local candidate models out of the table
  --require-targets   exit 1 when a target of issue 4 is not met
  --json              one JSON document instead of the table`;

export interface EvaluateArgs {
  traces: string;
  horizonMinutes?: number;
  folds?: number;
  trees?: number;
  candidates: boolean;
  requireTargets: boolean;
  json: boolean;
}

/** Parses the arguments; returns an error message instead of throwing. */
export function parseEvaluateArgs(argv: readonly string[]): EvaluateArgs | { error: string } | { help: true } {
  const out: Partial<EvaluateArgs> & { candidates: boolean; requireTargets: boolean; json: boolean } = { candidates: true, requireTargets: false, json: false };
  const num = (flag: string, v: string | undefined, integer: boolean): number | string => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) return `${flag} needs a positive ${integer ? 'integer' : 'number'}, got ${v ?? 'nothing'}`;
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => (inline !== undefined ? inline : argv[++i]);
    switch (flag) {
      case '--traces': {
        const v = value();
        if (!v) return { error: '--traces needs a folder' };
        out.traces = v;
        break;
      }
      case '--horizon':
      case '--folds':
      case '--trees': {
        const n = num(flag, value(), flag !== '--horizon');
        if (typeof n === 'string') return { error: n };
        if (flag === '--horizon') out.horizonMinutes = n;
        else if (flag === '--folds') out.folds = n;
        else out.trees = n;
        break;
      }
      case '--no-candidates':
        out.candidates = false;
        break;
      case '--require-targets':
        out.requireTargets = true;
        break;
      case '--json':
        out.json = true;
        break;
      case '-h':
      case '--help':
        return { help: true };
      default:
        return { error: `unknown argument ${a}` };
    }
  }
  if (!out.traces) return { error: '--traces DIR is required' };
  if (out.folds !== undefined && out.folds < 2) return { error: '--folds must be at least 2 (the global model is fitted on the other folds)' };
  return out as EvaluateArgs;
}

export async function runEvaluateCommand(argv: string[]): Promise<number> {
  const args = parseEvaluateArgs(argv);
  if ('help' in args) {
    console.log(EVALUATE_USAGE);
    return 0;
  }
  if ('error' in args) {
    console.error(`umbractl predict evaluate: ${args.error}\n${EVALUATE_USAGE}`);
    return 2;
  }
  try {
    const report = await evaluateTraces({
      tracesDir: args.traces,
      horizonMinutes: args.horizonMinutes,
      folds: args.folds,
      trees: args.trees,
      candidates: args.candidates,
      print: true,
      json: args.json,
      onProgress: args.json ? undefined : (m) => console.error(m),
    });
    if (args.requireTargets && !(report.targets.peakMaeMet && report.targets.f1Met)) return 1;
    return 0;
  } catch (err) {
    console.error(`umbractl predict evaluate: ${isUmbraError(err) ? err.message : errorMessage(err)}`);
    return isUmbraError(err) && err.reason === 'INVALID_ARGUMENT' ? 2 : 1;
  }
}

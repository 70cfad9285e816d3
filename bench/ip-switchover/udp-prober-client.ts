// Builds udp-prober.c and udp-responder.c and reads the prober's report (shared by the
// ip-switchover bench and the ipshadow OS test).
import { join } from 'node:path';
import { run } from '../../test/helpers/netns';
import { REPO_ROOT } from '../../test/helpers/umbra-cluster';
import { longestGap, type Answer, type GapStats } from './gap-stats';

export const PROBER_SOURCE = join(REPO_ROOT, 'bench', 'ip-switchover', 'udp-prober.c');
export const RESPONDER_SOURCE = join(REPO_ROOT, 'bench', 'ip-switchover', 'udp-responder.c');

async function build(dir: string, name: string, source: string): Promise<string> {
  const out = join(dir, name);
  await run('cc', ['-O2', '-Wall', '-Werror', '-o', out, source]);
  return out;
}

/** Compiles the prober into `dir`; returns the binary's path. */
export function buildProber(dir: string): Promise<string> {
  return build(dir, 'udp-prober', PROBER_SOURCE);
}

/** Compiles the responder (`udp-responder BIND_IPV4 PORT TAG`, prints "ready") into `dir`; returns its path. */
export function buildResponder(dir: string): Promise<string> {
  return build(dir, 'udp-responder', RESPONDER_SOURCE);
}

export interface ProberReport extends GapStats {
  sent: number;
  byTag: Record<string, number>;
  lastTag?: string;
  /** Probes sent between the old host's last answer and the new host's first that got no answer. */
  unansweredProbes?: number;
}

/**
 * Reads the prober's lines after "stop" up to its "end" line: `answer <ns> <seq> <tag>` each
 * (kernel receive time, ns since the epoch), then `end <sent>`.
 */
export async function readProberReport(lines: AsyncIterator<string>, label: string): Promise<ProberReport> {
  const answers: Answer[] = [];
  const seqs: number[] = [];
  for (;;) {
    const next = await lines.next();
    if (next.done) throw new Error(`${label}: the prober ended without its answers`);
    const [kind, a, b, tag] = (next.value as string).split(' ');
    if (kind === 'answer') {
      // ns since the epoch as a double: well under 1 us of rounding.
      answers.push({ atMs: Number(a) / 1e6, tag });
      seqs.push(Number(b));
    } else if (kind === 'end') {
      const stats = longestGap(answers);
      const byTag: Record<string, number> = {};
      for (const x of answers) byTag[x.tag] = (byTag[x.tag] ?? 0) + 1;
      const report: ProberReport = { sent: Number(a), ...stats, byTag, ...(answers.length ? { lastTag: answers[answers.length - 1].tag } : {}) };
      if (stats.switchoverGapFromMs !== undefined) {
        const from = answers.findIndex((x) => x.atMs === stats.switchoverGapFromMs);
        report.unansweredProbes = seqs[from + 1] - seqs[from] - 1;
      }
      return report;
    }
  }
}

// Reads a folder of traces in the gcd-vms format (one *.txt file per VM) from disk.

import { readdir, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { InvalidArgumentError, errorMessage } from '../../shared/errors';
import { parseTrace, TraceSeries } from './trace-format';

export interface TraceFolder {
  series: TraceSeries[];
  malformedLines: number;
  skippedFiles: number;
}

export async function readTraceFolder(dir: string): Promise<TraceFolder> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.txt')).sort();
  } catch (err) {
    throw new InvalidArgumentError('traces', `cannot read folder ${dir}: ${errorMessage(err)}`, { cause: err });
  }
  if (names.length === 0) throw new InvalidArgumentError('traces', `no *.txt trace files in ${dir}`);
  const series: TraceSeries[] = [];
  let malformed = 0;
  let skipped = 0;
  for (const name of names) {
    const text = await readFile(path.join(dir, name), 'utf8').catch(() => undefined);
    if (text === undefined) {
      skipped++;
      continue;
    }
    const parsed = parseTrace(name.replace(/\.txt$/, ''), text);
    malformed += parsed.malformedLines;
    if (parsed.series.cpu.length === 0) skipped++;
    else series.push(parsed.series);
  }
  return { series, malformedLines: malformed, skippedFiles: skipped };
}

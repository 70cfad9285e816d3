// Benchmark output: a readable table of our figures beside the peer's, then one JSON line of
// every figure (units in the key names) so runs can be compared over time.

export interface BenchRow {
  /** What is measured, e.g. "longest gap". */
  metric: string;
  /** Our figure and the peer's, in the unit given. */
  ours: number | string;
  peer?: number | string;
  unit: string;
  /** Target, e.g. "<= 5 ms"; printed beside the figures. */
  target?: string;
}

function cell(v: number | string | undefined): string {
  if (v === undefined) return '-';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toPrecision(4);
  return v;
}

export function printTable(title: string, peerName: string, rows: BenchRow[]): void {
  const header = ['metric', 'umbra', peerName, 'unit', 'target'];
  const body = rows.map((r) => [r.metric, cell(r.ours), cell(r.peer), r.unit, r.target ?? '']);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cols: string[]) => cols.map((c, i) => c.padEnd(widths[i])).join('  ');
  console.log(`\n${title}`);
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const b of body) console.log(line(b));
  console.log('');
}

/** The last line of every benchmark: a flat JSON object of figures. */
export function printFigures(figures: Record<string, number | string | boolean>): void {
  console.log(JSON.stringify(figures));
}

// What `umbractl migrate` prints while a switchover runs: where it goes and why, each step as it
// starts and ends, then the step timings and the outcome. Pure: wire messages in, lines out.

export interface WireDestination {
  host_id: string;
  source_host: string;
  chosen_by_rank: boolean;
  score: number;
  reasons: string[];
}

export interface WireStepUpdate {
  step: string;
  host_id: string;
  state: string;
  ok: boolean;
  duration_ms: number;
  error: string;
}

export interface WireSwitchover {
  id: string;
  vm_id: string;
  source_host: string;
  destination_host: string;
  status: string;
  fencing_token: string;
  steps: Array<{ step: string; host_id: string; duration_ms: number; ok: boolean; error: string }>;
  total_ms: number;
  error: string;
  /** 0 when unknown (IP-only switchovers, agents without the armed resume). */
  guest_paused_ms?: number;
}

const STEP_WIDTH = 28;
const HOST_WIDTH = 16;

function ms(v: number): string {
  return `${v.toFixed(2).padStart(9)} ms`;
}

/** "switching g1 hv-a -> hv-b (best by rank, score 0.82: ...)". */
export function formatDestination(vmId: string, d: WireDestination): string {
  const why = d.reasons.length ? `: ${d.reasons.join('; ')}` : '';
  const how = d.chosen_by_rank ? ` (best by rank, score ${d.score.toFixed(2)}${why})` : why ? ` (${d.reasons.join('; ')})` : '';
  return `switching ${vmId} ${d.source_host} -> ${d.host_id}${how}`;
}

/** One line per update: a step starting ("..."), done ("ok" with its duration) or failed. */
export function formatStepUpdate(u: WireStepUpdate): string {
  const head = `  ${u.step.padEnd(STEP_WIDTH)} ${u.host_id.padEnd(HOST_WIDTH)}`;
  if (u.state !== 'SWITCHOVER_STEP_STATE_ENDED') return `${head} ...`;
  return `${head} ${ms(u.duration_ms)}  ${u.ok ? 'ok' : `FAILED: ${u.error}`}`;
}

/** The step timings table and the outcome line. */
export function formatOutcome(s: WireSwitchover): string[] {
  const lines = ['step timings:'];
  for (const st of s.steps) lines.push(`  ${st.step.padEnd(STEP_WIDTH)} ${st.host_id.padEnd(HOST_WIDTH)} ${ms(st.duration_ms)}  ${st.ok ? 'ok' : `FAILED: ${st.error}`}`);
  const stepsSum = s.steps.reduce((a, st) => a + st.duration_ms, 0);
  lines.push(`  ${'(sum of steps)'.padEnd(STEP_WIDTH)} ${''.padEnd(HOST_WIDTH)} ${ms(stepsSum)}`);
  if (s.guest_paused_ms) lines.push(`  ${'guest paused'.padEnd(STEP_WIDTH)} ${''.padEnd(HOST_WIDTH)} ${ms(s.guest_paused_ms)}  (source pause to destination running, agents' clocks)`);
  lines.push(`${s.status}: ${s.vm_id} ${s.source_host} -> ${s.destination_host}, fencing token ${s.fencing_token}, ${s.total_ms.toFixed(2)} ms${s.error ? ` (${s.error})` : ''}`);
  return lines;
}

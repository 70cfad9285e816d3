// SMART health through smartctl (when installed): overall status, reallocated and pending sectors.

import { execFile } from 'node:child_process';
import { parseSmartctlJson } from './stat-parsers';

const SMARTCTL_TIMEOUT_MS = 10_000;

function run(args: string[]): Promise<{ stdout: string; missing: boolean }> {
  return new Promise((resolve) => {
    execFile('smartctl', args, { timeout: SMARTCTL_TIMEOUT_MS }, (err, stdout) => {
      // smartctl's exit code is a bit mask of findings; the JSON on stdout is what counts.
      const missing = (err as NodeJS.ErrnoException | null)?.code === 'ENOENT';
      resolve({ stdout: String(stdout ?? ''), missing });
    });
  });
}

export async function readSmart(): Promise<{ present: boolean; healthy?: boolean; reallocatedSectors?: number; pendingSectors?: number; devices?: number; error?: string }> {
  const scan = await run(['--scan', '-j']);
  if (scan.missing) return { present: false, error: 'smartctl not installed' };
  let devices: string[] = [];
  try {
    devices = ((JSON.parse(scan.stdout) as { devices?: Array<{ name?: string }> }).devices ?? []).map((d) => d.name ?? '').filter((n) => /^\/dev\/[\w/-]+$/.test(n));
  } catch {
    return { present: false, error: 'smartctl --scan gave no JSON' };
  }
  if (devices.length === 0) return { present: false, error: 'no SMART devices' };
  let healthy = true;
  let realloc = 0;
  let pending = 0;
  for (const d of devices) {
    const r = parseSmartctlJson((await run(['-H', '-A', '-j', d])).stdout);
    if (!r) continue;
    if (r.healthy === false) healthy = false;
    realloc += r.reallocated ?? 0;
    pending += r.pending ?? 0;
  }
  return { present: true, healthy, reallocatedSectors: realloc, pendingSectors: pending, devices: devices.length };
}

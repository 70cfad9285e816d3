// Tap devices for shadow QEMUs on this host's VM bridge, through ip(8) (iproute2): create, attach
// to the bridge, bring up, delete. Idempotent so a relaunch reuses what is there.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { UnavailableError } from '../../shared/errors';

const execFileP = promisify(execFile);
const IP_TIMEOUT_MS = 5000;

async function ip(args: string[]): Promise<void> {
  try {
    await execFileP('ip', args, { timeout: IP_TIMEOUT_MS });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new UnavailableError(`ip ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`, { cause: err });
  }
}

async function exists(name: string): Promise<boolean> {
  try {
    await execFileP('ip', ['link', 'show', 'dev', name], { timeout: IP_TIMEOUT_MS });
    return true;
  } catch {
    return false;
  }
}

/** Makes sure tap `name` exists, is on `bridge` ('' = none) and is up. */
export async function ensureTap(name: string, bridge: string): Promise<void> {
  if (!(await exists(name))) await ip(['tuntap', 'add', 'dev', name, 'mode', 'tap']);
  if (bridge) await ip(['link', 'set', name, 'master', bridge]);
  await ip(['link', 'set', name, 'up']);
}

export async function deleteTap(name: string): Promise<void> {
  if (await exists(name)) await ip(['link', 'del', name]);
}

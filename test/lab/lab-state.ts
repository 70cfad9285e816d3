// What a running lab consists of, saved so that `lab down` (or a second `lab up`) can remove
// exactly what `lab up` made: namespaces, and processes by PID.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const LAB_DIR = process.env.UMBRA_LAB_DIR ?? '/var/tmp/umbra-lab';
/**
 * The hosts' shadow images (shadow_image_dir), on a tmpfs as README recommends: on disk, the lab's
 * busy guest had its shadows written out at about 25 MB/s for as long as the lab ran.
 */
export const LAB_SHADOW_IMAGE_DIR = process.env.UMBRA_LAB_SHADOW_IMAGE_DIR ?? '/dev/shm/umbra-lab';
export const LAB_STATE_FILE = path.join(LAB_DIR, 'state.json');
export const LAB_NS_PREFIX = 'umbra-lab';

export interface LabProcess {
  name: string;
  ns: string;
  pid: number;
  log: string;
}

export interface LabState {
  createdAt: string;
  namespaces: string[];
  processes: LabProcess[];
  coordinator: string;
  operator: { ca: string; cert: string; key: string };
}

export function readLabState(): LabState | undefined {
  if (!existsSync(LAB_STATE_FILE)) return undefined;
  return JSON.parse(readFileSync(LAB_STATE_FILE, 'utf8')) as LabState;
}

export function writeLabState(state: LabState): void {
  mkdirSync(LAB_DIR, { recursive: true });
  writeFileSync(LAB_STATE_FILE, JSON.stringify(state, null, 2));
}

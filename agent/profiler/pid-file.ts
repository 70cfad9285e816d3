// Reads a VM process's pid from its pid file (QEMU's -pidfile), for VMs configured by pid file.

import { readOr } from './pseudo-file';

/** The pid in the file, or undefined when the file is absent or holds no positive integer. */
export function readPidFile(file: string): number | undefined {
  const text = readOr(file, undefined);
  if (text === undefined) return undefined;
  const pid = Number(text.trim());
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

// Reads small /proc and /sys files synchronously: they are generated in memory by the kernel, and
// a synchronous read costs a fraction of the CPU of the promise-based reader (it matters at a
// sample's 5 ms budget).

import { readFileSync } from 'node:fs';

export function readOr<T extends string | undefined>(file: string, fallback: T): string | T {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
}

// The program version, from the package.json the code was installed with.
import { readFileSync } from 'node:fs';
import path from 'node:path';

let cached: string | undefined;

export function programVersion(): string {
  if (cached) return cached;
  for (const dir of [path.join(__dirname, '..'), path.join(__dirname, '..', '..')]) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'umbra' && pkg.version) return (cached = pkg.version);
    } catch {
      // try the next candidate
    }
  }
  return (cached = '0.0.0-unknown');
}

// Layering of the programs: the coordinator and the shared code never reach into agent/ (the
// pure protocol and validation code they share lives in shared/), and shared/ imports neither program.
import test from 'ava';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = join(__dirname, '..', '..', '..', '..');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sources(p);
    return p.endsWith('.ts') ? [p] : [];
  });
}

const importsOf = (file: string) => [...readFileSync(file, 'utf8').matchAll(/(?:from\s+|require\(|import\()\s*'(\.[^']+)'/g)].map((m) => m[1]);

function reachesInto(file: string, top: string): string[] {
  return importsOf(file).filter((spec) => relative(root, join(file, '..', spec)).split('/')[0] === top);
}

test('coordinator/ imports nothing from agent/', (t) => {
  const files = sources(join(root, 'coordinator'));
  t.true(files.length > 20);
  for (const f of files) t.deepEqual(reachesInto(f, 'agent'), [], relative(root, f));
});

test('shared/ imports nothing from agent/ or coordinator/', (t) => {
  const files = sources(join(root, 'shared'));
  t.true(files.length > 20);
  for (const f of files) t.deepEqual([...reachesInto(f, 'agent'), ...reachesInto(f, 'coordinator')], [], relative(root, f));
});

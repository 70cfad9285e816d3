#!/usr/bin/env node
// Runs the ava suite on the compiled tests and ends with the plain line "N passed, N failed"
// that CI reads. Arguments are passed to ava (e.g. a folder of dist/test to run a subset).
'use strict';
const { spawn, execFileSync } = require('node:child_process');
const path = require('node:path');

// Namespaces left by a crashed earlier run of these tests: the prefix is ours and the name
// carries the creating process's PID (umbt<tag><pid>x<n>); live owners' namespaces are kept.
try {
  const out = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  for (const line of out.split('\n')) {
    const name = line.split(' ')[0];
    const m = /^umbt[a-z]*(\d+)x\d+/.exec(name || '');
    if (m && !isAlive(Number(m[1]))) {
      try { execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' }); } catch { /* already gone */ }
    }
  }
} catch { /* no iproute2 or not root: the namespace tests will say they skipped */ }

function isAlive(pid) {
  try { process.kill(pid, 0); return true; } catch (e) { return e.code === 'EPERM'; }
}

const avaBin = path.join(__dirname, '..', 'node_modules', 'ava', 'entrypoints', 'cli.mjs');
const args = process.argv.slice(2).map((a) => (a.startsWith('dist/') && !a.includes('*') && !a.endsWith('.js') ? `${a}/**/*.test.js` : a));
const child = spawn(process.execPath, [avaBin, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, FORCE_COLOR: '0' } });
let text = '';
child.stdout.on('data', (d) => { process.stdout.write(d); text += d.toString(); });
child.on('exit', (code, signal) => {
  const count = (re) => { const m = text.match(re); return m ? Number(m[1]) : 0; };
  // ava prints "N tests passed" only when nothing failed, so count the tick lines as well.
  const ticks = (text.match(/^\s*✔/gm) || []).length;
  const crosses = (text.match(/^\s*✘/gm) || []).length;
  let passed = Math.max(count(/^\s*(\d+) tests? passed/m), ticks);
  let failed = Math.max(count(/^\s*(\d+) tests? failed/m), crosses) + count(/^\s*(\d+) uncaught exceptions?/m) + count(/^\s*(\d+) unhandled rejections?/m) + count(/^\s*(\d+) tests? remained pending/m) + count(/^\s*(\d+) tests? timed out/m);
  const skipped = count(/^\s*(\d+) tests? skipped/m);
  if (code !== 0 && failed === 0) failed = 1; // ava failed before or outside any test
  console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  process.exit(code ?? (signal ? 1 : 0));
});

#!/usr/bin/env node
// `npm run bench -- NAME [args]`: sets up and builds (scripts/setup.sh), then runs bench/NAME.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const [name, ...rest] = process.argv.slice(2);
const available = fs.readdirSync(path.join(root, 'bench'), { withFileTypes: true })
  .filter((d) => d.isDirectory() && d.name !== 'lib').map((d) => d.name).sort();
if (!name || !available.includes(name)) {
  console.error(`usage: npm run bench -- NAME\nbenchmarks: ${available.join(', ')}`);
  process.exit(2);
}
const setup = spawnSync('bash', [path.join(root, 'scripts', 'setup.sh')], { stdio: ['ignore', 'inherit', 'inherit'] });
if (setup.status !== 0) process.exit(setup.status ?? 1);
const r = spawnSync(process.execPath, ['--expose-gc', path.join(root, 'dist', 'bench', name, 'main.js'), ...rest], { stdio: 'inherit' });
process.exit(r.status ?? 1);

#!/usr/bin/env node
// Run after any 'npm install' that rewrites package-lock.json.
// Adds lock entries for platform-only optional packages the registry here does not serve, so
// `npm ci` sees the lock in sync; their os/cpu fields make npm skip them on this platform.
const fs = require('fs');
const lock = JSON.parse(fs.readFileSync('package-lock.json', 'utf8'));
const add = { 'darwin-arm64': ['darwin', 'arm64'], 'darwin-x64': ['darwin', 'x64'], 'linux-arm': ['linux', 'arm'], 'win32-x64': ['win32', 'x64'] };
const ver = lock.packages['node_modules/msgpackr-extract'].version;
for (const [suffix, [os, cpu]] of Object.entries(add)) {
  const key = `node_modules/@msgpackr-extract/msgpackr-extract-${suffix}`;
  if (!lock.packages[key]) lock.packages[key] = { version: ver, cpu: [cpu], license: 'MIT', optional: true, os: [os] };
}
const sorted = {};
for (const k of Object.keys(lock.packages).sort()) sorted[k] = lock.packages[k];
lock.packages = sorted;
fs.writeFileSync('package-lock.json', JSON.stringify(lock, null, 2) + '\n');

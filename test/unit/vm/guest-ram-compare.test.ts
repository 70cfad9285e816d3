// The benchmark's RAM checks: page comparison counts exactly the differing pages, and the
// stand-in flush makes the images equal by writing only those pages.
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { compareRam, syncDifferingPages } from '../../../bench/vm-switchover/guest-ram-compare';

const PAGE = 4096;
const SIZE = 6 * 1024 * 1024; // more than one 4 MiB chunk, and a partial last chunk
const dir = mkdtempSync(path.join(os.tmpdir(), 'umbra-ramcmp-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

test('counts differing and non-zero pages, then syncs only the differing ones', async (t) => {
  const a = Buffer.alloc(SIZE);
  for (let p = 0; p < SIZE / PAGE; p += 3) a.writeUInt32LE(p + 1, p * PAGE + 100); // every third page non-zero
  const b = Buffer.from(a);
  const changed = [0, 1, 2, 1023, 1024, 1025, SIZE / PAGE - 1];
  for (const p of changed) b[p * PAGE + 7] ^= 0xff;
  const pa = path.join(dir, 'a.ram');
  const pb = path.join(dir, 'b.ram');
  writeFileSync(pa, a);
  writeFileSync(pb, b);
  const cmp = await compareRam(pa, pb, SIZE);
  t.is(cmp.pages, SIZE / PAGE);
  t.is(cmp.differingPages, changed.length);
  t.is(cmp.nonZeroPages, Math.ceil(SIZE / PAGE / 3));
  const written = await syncDifferingPages(pa, pb, SIZE);
  t.is(written, changed.length * PAGE);
  t.true(readFileSync(pb).equals(a));
  t.is((await compareRam(pa, pb, SIZE)).differingPages, 0);
});

test('a shorter (sparse, truncated) destination counts its missing tail as zero', async (t) => {
  const a = Buffer.alloc(2 * PAGE, 1);
  const pa = path.join(dir, 'c.ram');
  const pb = path.join(dir, 'd.ram');
  writeFileSync(pa, a);
  writeFileSync(pb, Buffer.alloc(PAGE, 1));
  t.is((await compareRam(pa, pb, 2 * PAGE)).differingPages, 1);
});

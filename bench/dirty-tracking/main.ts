// Benchmark: dirty-tracker scan rate per core against the raw read bandwidth of the same memory,
// measured in the same run on a process with a shared memfd mapping (like QEMU's guest RAM); and
// the uffd-wp scan split into its fixed cost (walking the whole range) and its cost per page found,
// fitted over scans with different numbers of written pages: the target of a round on a 1 GiB
// guest is at most 1 ms of scanning plus the pages it finds, i.e. the fixed part at most 1 ms.
// Usage: npm run bench -- dirty-tracking [sizeMiB=1024]
import { readSync } from 'node:fs';
import { loadavg } from 'node:os';
import { printFigures, printTable } from '../lib/report';
import { native } from '../../agent/memory/native-binding';
import { locateGuestRam, ProcGuestMemory } from '../../agent/memory/proc-guest-memory';
import { HashTracker } from '../../agent/memory/hash-tracker';
import { UffdWpTracker } from '../../agent/memory/uffd-wp-tracker';
import { softDirtySupported } from '../../agent/memory/soft-dirty-tracker';
import { ShmWriterProcess } from '../../test/os/replication/shm-writer-process';

const DEFAULT_SIZE_MIB = 1024;
const REPEATS = 3;
const READ_CHUNK_BYTES = 1 << 20;
const DIRTY_FRACTION = 0.01;
/** Written pages of the fitted scans: fractions of the mapping, spread at random or in one block. */
const FIT_FRACTIONS = [0, 0.001, 0.005, 0.01, 0.02];
const FIT_REPEATS = 5;
/** Pages per 2 MiB page-table leaf (one PTE page): the kernel re-protects and flushes per such range. */
const PAGES_PER_PMD = 512;

interface FitPoint {
  pages: number;
  /** 2 MiB ranges holding at least one of the pages. */
  ranges: number;
  ms: number;
}

/** Least squares of ms = fixed + perPage * pages + perRange * ranges (3x3 normal equations). */
function fitScanCost(points: FitPoint[]): { fixedMs: number; perPageMs: number; perRangeMs: number } {
  const rows = points.map((p) => [1, p.pages, p.ranges]);
  const m = [0, 1, 2].map((i) => [0, 1, 2].map((j) => rows.reduce((s, r) => s + r[i] * r[j], 0)));
  const v = [0, 1, 2].map((i) => rows.reduce((s, r, k) => s + r[i] * points[k].ms, 0));
  // Gaussian elimination with partial pivoting.
  for (let c = 0; c < 3; c++) {
    let piv = c;
    for (let r = c + 1; r < 3; r++) if (Math.abs(m[r][c]) > Math.abs(m[piv][c])) piv = r;
    [m[c], m[piv]] = [m[piv], m[c]];
    [v[c], v[piv]] = [v[piv], v[c]];
    for (let r = c + 1; r < 3; r++) {
      const f = m[r][c] / m[c][c];
      for (let k = c; k < 3; k++) m[r][k] -= f * m[c][k];
      v[r] -= f * v[c];
    }
  }
  const x = [0, 0, 0];
  for (let r = 2; r >= 0; r--) x[r] = (v[r] - m[r].slice(r + 1).reduce((s, a, k) => s + a * x[r + 1 + k], 0)) / m[r][r];
  return { fixedMs: x[0], perPageMs: x[1], perRangeMs: x[2] };
}

function rangesOf(pages: Uint32Array): number {
  return new Set(Array.from(pages, (p) => Math.floor(p / PAGES_PER_PMD))).size;
}

function ms(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function best(n: number, fn: () => number): number {
  let b = Infinity;
  for (let i = 0; i < n; i++) b = Math.min(b, fn());
  return b;
}

async function bestAsync(n: number, fn: () => Promise<number>): Promise<number> {
  let b = Infinity;
  for (let i = 0; i < n; i++) b = Math.min(b, await fn());
  return b;
}

async function main(): Promise<void> {
  const sizeMiB = Number(process.argv[2] ?? DEFAULT_SIZE_MIB);
  const pages = (sizeMiB * 1024 * 1024) / 4096;
  const writer = await ShmWriterProcess.start(pages, true);
  try {
    await writer.cmd(`pattern 0 ${pages} 11`);
    const region = locateGuestRam(writer.pid, { sizeBytes: writer.sizeBytes, pathContains: 'memfd:umbra-test-ram' });
    const memory = ProcGuestMemory.open(region);
    const bytes = region.sizeBytes;
    const gbps = (t: number) => bytes / 1e9 / (t / 1000);

    // Raw reads of the same memory: pread copies (what a sender does) and a word-sum through a mapping.
    const chunk = Buffer.alloc(READ_CHUNK_BYTES);
    const preadMs = best(REPEATS, () => {
      const t = process.hrtime.bigint();
      for (let off = 0; off < bytes; off += READ_CHUNK_BYTES) readSync(memory.fd, chunk, 0, READ_CHUNK_BYTES, off);
      return ms(t);
    });
    const mapping = native.mapShared(memory.fd, bytes, 0);
    native.sumMappedWords(mapping, 0, bytes); // fault the mapping in once
    const mappedMs = best(REPEATS, () => {
      const t = process.hrtime.bigint();
      native.sumMappedWords(mapping, 0, bytes);
      return ms(t);
    });
    native.unmapShared(mapping);
    const rawMs = Math.min(preadMs, mappedMs);

    // Hash tracker: a full scan (hash every page, compare with the previous round).
    const hash = new HashTracker(memory);
    await hash.start();
    await hash.scan(); // first round maps and hashes everything
    const hashMs = await bestAsync(REPEATS, async () => {
      const t = process.hrtime.bigint();
      await hash.scan();
      return ms(t);
    });
    hash.close();

    // uffd-wp: scan cost with nothing written, and with 1% of pages written.
    const uffd = new UffdWpTracker(region);
    await uffd.start();
    await uffd.scan();
    const idleMs = await bestAsync(REPEATS, async () => {
      const t = process.hrtime.bigint();
      await uffd.scan();
      return ms(t);
    });
    const writes = Math.round(pages * DIRTY_FRACTION);
    let found = 0;
    let dirtyFound: Uint32Array | undefined;
    const dirtyMs = await bestAsync(REPEATS, async () => {
      await writer.cmd(`random ${writes} ${Date.now() % 1000}`);
      const t = process.hrtime.bigint();
      dirtyFound = await uffd.scan();
      found = dirtyFound.length;
      return ms(t);
    });
    // Where a scan's time goes: for each number of written pages, spread at random (many 2 MiB
    // ranges) and in one block (few), the fastest of FIT_REPEATS scans (the machine is shared; the
    // minimum is the least disturbed); then ms = fixed + perPage * pages + perRange * ranges.
    const fit: FitPoint[] = [];
    for (const f of FIT_FRACTIONS) {
      for (const spread of f > 0 ? ['random', 'block'] : ['none']) {
        let fastest: FitPoint = { pages: 0, ranges: 0, ms: Infinity };
        for (let i = 0; i < FIT_REPEATS; i++) {
          const n = Math.round(pages * f);
          if (spread === 'random') await writer.cmd(`random ${n} ${(Date.now() + i) % 1000}`);
          if (spread === 'block') await writer.cmd(`pattern ${(i * 7919 * PAGES_PER_PMD) % (pages - n)} ${n} ${i + 3}`);
          const t = process.hrtime.bigint();
          const found = await uffd.scan();
          const took = ms(t);
          if (took < fastest.ms) fastest = { pages: found.length, ranges: rangesOf(found), ms: took };
        }
        fit.push(fastest);
      }
    }
    const cost = fitScanCost(fit);
    const dirtyRanges = dirtyFound ? rangesOf(dirtyFound) : 0;
    const minusPages = dirtyMs - cost.perPageMs * found - cost.perRangeMs * dirtyRanges;
    uffd.close();
    memory.close();
    const sd = softDirtySupported(writer.pid);

    printTable(`dirty tracking, ${sizeMiB} MiB shared memfd mapping, 1 core, load ${loadavg()[0].toFixed(2)}`, 'raw read', [
      { metric: 'raw read: pread copies', ours: gbps(preadMs), unit: 'GB/s' },
      { metric: 'raw read: mapped word sum', ours: gbps(mappedMs), unit: 'GB/s' },
      { metric: 'hash tracker full scan', ours: gbps(hashMs), peer: gbps(rawMs), unit: 'GB/s', target: '>= 60% of raw' },
      { metric: 'hash tracker / raw read', ours: (100 * rawMs) / hashMs, unit: '%', target: '>= 60' },
      { metric: 'uffd-wp scan, nothing written', ours: idleMs, unit: 'ms' },
      { metric: `uffd-wp scan, ${writes} pages written`, ours: dirtyMs, unit: 'ms' },
      { metric: 'uffd-wp pages found / written', ours: `${found} / ${writes} (random, may repeat)`, unit: 'pages' },
      { metric: 'uffd-wp scan, fixed part (fitted: walking the range)', ours: cost.fixedMs, unit: 'ms', target: sizeMiB >= 1024 ? '<= 1 ms' : undefined },
      { metric: 'uffd-wp scan, per page found (fitted)', ours: cost.perPageMs * 1000, unit: 'us' },
      { metric: 'uffd-wp scan, per 2 MiB range holding found pages (fitted: re-protect + TLB flush)', ours: cost.perRangeMs * 1000, unit: 'us' },
      {
        metric: `uffd-wp scan minus per-page cost, the ${found}-page scan above (${dirtyRanges} ranges)`,
        ours: minusPages,
        unit: 'ms',
        target: sizeMiB >= 1024 ? '<= 1 ms' : undefined,
      },
      { metric: 'uffd-wp fit points (pages/ranges: ms)', ours: fit.map((p) => `${p.pages}/${p.ranges}: ${p.ms.toFixed(3)}`).join(', '), unit: '' },
      { metric: 'soft-dirty', ours: sd.ok ? 'available' : `skipped: ${sd.why}`, unit: '' },
    ]);
    printFigures({
      size_mib: sizeMiB,
      load_avg_1m: loadavg()[0],
      raw_pread_gb_per_s: gbps(preadMs),
      raw_mapped_read_gb_per_s: gbps(mappedMs),
      hash_scan_gb_per_s: gbps(hashMs),
      hash_vs_raw_read_pct: (100 * rawMs) / hashMs,
      uffd_idle_scan_ms: idleMs,
      uffd_dirty_scan_ms: dirtyMs,
      uffd_dirty_pages_written: writes,
      uffd_dirty_pages_found: found,
      uffd_scan_fixed_ms: cost.fixedMs,
      uffd_scan_us_per_page: cost.perPageMs * 1000,
      uffd_scan_us_per_2mib_range: cost.perRangeMs * 1000,
      uffd_dirty_scan_ranges: dirtyRanges,
      uffd_dirty_scan_minus_pages_ms: minusPages,
      soft_dirty_available: sd.ok,
    });
  } finally {
    writer.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

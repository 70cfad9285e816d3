// Benchmark: dirty-tracker scan rate per core against the raw read bandwidth of the same memory,
// measured in the same run on a process with a shared memfd mapping (like QEMU's guest RAM).
// Usage: npm run bench -- dirty-tracking [sizeMiB=512]
import { readSync } from 'node:fs';
import { printFigures, printTable } from '../lib/report';
import { native } from '../../agent/memory/native-binding';
import { locateGuestRam, ProcGuestMemory } from '../../agent/memory/proc-guest-memory';
import { HashTracker } from '../../agent/memory/hash-tracker';
import { UffdWpTracker } from '../../agent/memory/uffd-wp-tracker';
import { softDirtySupported } from '../../agent/memory/soft-dirty-tracker';
import { ShmWriterProcess } from '../../test/os/replication/shm-writer-process';

const DEFAULT_SIZE_MIB = 512;
const REPEATS = 3;
const READ_CHUNK_BYTES = 1 << 20;
const DIRTY_FRACTION = 0.01;

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
    const dirtyMs = await bestAsync(REPEATS, async () => {
      await writer.cmd(`random ${writes} ${Date.now() % 1000}`);
      const t = process.hrtime.bigint();
      found = (await uffd.scan()).length;
      return ms(t);
    });
    uffd.close();
    memory.close();
    const sd = softDirtySupported(writer.pid);

    printTable(`dirty tracking, ${sizeMiB} MiB shared memfd mapping, 1 core`, 'raw read', [
      { metric: 'raw read: pread copies', ours: gbps(preadMs), unit: 'GB/s' },
      { metric: 'raw read: mapped word sum', ours: gbps(mappedMs), unit: 'GB/s' },
      { metric: 'hash tracker full scan', ours: gbps(hashMs), peer: gbps(rawMs), unit: 'GB/s', target: '>= 60% of raw' },
      { metric: 'hash tracker / raw read', ours: (100 * rawMs) / hashMs, unit: '%', target: '>= 60' },
      { metric: 'uffd-wp scan, nothing written', ours: idleMs, unit: 'ms' },
      { metric: `uffd-wp scan, ${writes} pages written`, ours: dirtyMs, unit: 'ms' },
      { metric: 'uffd-wp pages found / written', ours: `${found} / ${writes} (random, may repeat)`, unit: 'pages' },
      { metric: 'soft-dirty', ours: sd.ok ? 'available' : `skipped: ${sd.why}`, unit: '' },
    ]);
    printFigures({
      size_mib: sizeMiB,
      raw_pread_gb_per_s: gbps(preadMs),
      raw_mapped_read_gb_per_s: gbps(mappedMs),
      hash_scan_gb_per_s: gbps(hashMs),
      hash_vs_raw_read_pct: (100 * rawMs) / hashMs,
      uffd_idle_scan_ms: idleMs,
      uffd_dirty_scan_ms: dirtyMs,
      uffd_dirty_pages_written: writes,
      uffd_dirty_pages_found: found,
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

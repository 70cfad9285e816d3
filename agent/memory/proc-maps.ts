// Parser for /proc/PID/maps lines (pure): finds the shared mapping that holds a guest's RAM.

export interface MapEntry {
  startAddress: number;
  endAddress: number;
  /** rwxs/p flags as printed by the kernel, e.g. "rw-s". */
  perms: string;
  fileOffsetBytes: number;
  inode: number;
  /** Backing path ("/memfd:name (deleted)", a file path, "[heap]", or "" for anonymous). */
  path: string;
}

const LINE = /^([0-9a-f]+)-([0-9a-f]+)\s+([rwxsp-]{4})\s+([0-9a-f]+)\s+\S+\s+(\d+)\s*(.*)$/;

/** Parses the text of /proc/PID/maps; malformed lines are skipped. */
export function parseProcMaps(text: string): MapEntry[] {
  const out: MapEntry[] = [];
  for (const line of text.split('\n')) {
    const m = LINE.exec(line);
    if (!m) continue;
    out.push({
      startAddress: parseInt(m[1], 16),
      endAddress: parseInt(m[2], 16),
      perms: m[3],
      fileOffsetBytes: parseInt(m[4], 16),
      inode: Number(m[5]),
      path: m[6].trim(),
    });
  }
  return out;
}

export interface RamMappingQuery {
  /** Exact guest RAM size. */
  sizeBytes: number;
  /** Substring the backing path must contain (e.g. the memfd name or the memory-backend-file path). */
  pathContains?: string;
}

/**
 * The shared, writable mapping of exactly `sizeBytes` (QEMU maps guest RAM once, shared, when run
 * with memory-backend-memfd/file share=on). Adjacent mappings of the same object are merged first,
 * because the kernel may split one mapping into several VMAs (e.g. after madvise or mprotect).
 */
export function findRamMapping(entries: MapEntry[], query: RamMappingQuery): MapEntry | undefined {
  const shared = entries.filter((e) => e.perms[3] === 's' && e.perms[0] === 'r' && e.perms[1] === 'w' && e.inode !== 0);
  const merged: MapEntry[] = [];
  for (const e of shared) {
    const last = merged[merged.length - 1];
    if (
      last &&
      last.endAddress === e.startAddress &&
      last.inode === e.inode &&
      last.path === e.path &&
      last.fileOffsetBytes + (last.endAddress - last.startAddress) === e.fileOffsetBytes
    ) {
      last.endAddress = e.endAddress;
    } else {
      merged.push({ ...e });
    }
  }
  return merged.find(
    (e) => e.endAddress - e.startAddress === query.sizeBytes && (query.pathContains === undefined || e.path.includes(query.pathContains)),
  );
}

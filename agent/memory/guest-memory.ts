// The port through which replication sees a guest's RAM: page-granular reads of a live region.

/** Where a guest's RAM lives in its process. */
export interface GuestRamRegion {
  pid: number;
  /** Address of the RAM mapping inside the process (for userfaultfd and pagemap). */
  startAddress: number;
  sizeBytes: number;
  pageSizeBytes: number;
  /** Offset of the mapping inside its backing object (memfd or file). */
  fileOffsetBytes: number;
  /** Backing path as printed in /proc/PID/maps. */
  backingPath: string;
}

export interface GuestMemory {
  readonly region: GuestRamRegion;
  readonly pageCount: number;
  /** Copies `count` consecutive pages starting at page `index` into `into` (at offset 0). */
  readPages(index: number, count: number, into: Buffer): void;
  /** File descriptor of the backing object, for trackers that hash in place. */
  readonly fd: number;
  close(): void;
}

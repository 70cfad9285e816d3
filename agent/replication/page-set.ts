// A set of page indexes as a bitmap (pure): what a shadow is owed, merged round after round.

export class PageSet {
  private readonly bits: Uint32Array;
  private count = 0;

  constructor(readonly pageCount: number) {
    this.bits = new Uint32Array(Math.ceil(pageCount / 32));
  }

  get size(): number {
    return this.count;
  }

  add(pages: Uint32Array): void {
    for (const p of pages) {
      if (p >= this.pageCount) continue;
      const w = p >>> 5;
      const m = 1 << (p & 31);
      if ((this.bits[w] & m) === 0) {
        this.bits[w] |= m;
        this.count++;
      }
    }
  }

  addAll(): void {
    this.bits.fill(0xffffffff);
    const tail = this.pageCount & 31;
    if (tail) this.bits[this.bits.length - 1] = (1 << tail) - 1;
    this.count = this.pageCount;
  }

  clear(): void {
    this.bits.fill(0);
    this.count = 0;
  }

  /** Removes and returns every member, sorted. */
  take(): Uint32Array {
    const out = new Uint32Array(this.count);
    let n = 0;
    for (let w = 0; w < this.bits.length; w++) {
      let v = this.bits[w];
      while (v !== 0) {
        const low = v & -v;
        out[n++] = w * 32 + (31 - Math.clz32(low));
        v ^= low;
      }
    }
    this.bits.fill(0);
    this.count = 0;
    return out;
  }
}

/** True when two sorted page lists are identical. */
export function samePages(a: Uint32Array, b: Uint32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

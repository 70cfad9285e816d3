// Counting a ListHostsResponse's hosts in its wire bytes, without decoding them (load generator).

/** Number of top-level `hosts` entries (field 1, length-delimited) in a ListHostsResponse. */
export function countHosts(buf: Buffer): number {
  let i = 0;
  let n = 0;
  const varint = (): number => {
    let v = 0;
    let shift = 0;
    for (;;) {
      if (i >= buf.length) throw new Error('truncated varint');
      const b = buf[i++];
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
      shift += 7;
    }
  };
  while (i < buf.length) {
    const key = varint();
    if (key !== 0x0a) throw new Error(`unexpected field key ${key}`);
    const length = varint(); // before `i +=`, which would read i ahead of the varint's bytes
    i += length;
    n++;
  }
  if (i !== buf.length) throw new Error('truncated host entry');
  return n;
}

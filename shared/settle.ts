// A promise's outcome as a value: for work started now and looked at later (its rejection is then
// not unhandled in between), and taken apart again where it is looked at.
export type Settled<T> = { ok: true; value: T } | { ok: false; err: unknown };

export function settle<T>(p: Promise<T>): Promise<Settled<T>> {
  return p.then(
    (value) => ({ ok: true as const, value }),
    (err: unknown) => ({ ok: false as const, err }),
  );
}

/** The settled value, or its error thrown again. */
export async function unsettle<T>(p: Promise<Settled<T>>): Promise<T> {
  const s = await p;
  if (!s.ok) throw s.err;
  return s.value;
}

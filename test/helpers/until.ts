// Waits for a condition instead of a fixed sleep: unit tests run beside busy workers on a 2-core CI
// machine, where a timer can fire tens of milliseconds late.

/** Resolves once `cond()` holds, polling every `intervalMs`; throws naming `what` after `timeoutMs`. */
export async function until(cond: () => boolean, what: string, timeoutMs = 5000, intervalMs = 5): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

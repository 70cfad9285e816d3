// Benchmarks create namespaces, daemons and QEMU processes: an operator's Ctrl-C or a timeout's
// SIGTERM must not leave them behind. Cleanups registered here run (newest first) before the
// process exits on either signal; the normal path still cleans up in its own `finally`.

const cleanups = new Set<() => Promise<void>>();
let installed = false;

async function cleanUpAndExit(signal: 'SIGINT' | 'SIGTERM'): Promise<void> {
  console.error(`${signal}: removing what the benchmark created before exiting`);
  for (const cleanup of [...cleanups].reverse()) {
    await cleanup().catch((err: unknown) => console.error(`cleanup failed: ${err instanceof Error ? err.message : String(err)}`));
  }
  process.exit(signal === 'SIGINT' ? 130 : 143);
}

/** Registers `cleanup` to run if the process is interrupted; returns the function that unregisters it. */
export function cleanupOnInterrupt(cleanup: () => Promise<void>): () => void {
  cleanups.add(cleanup);
  if (!installed) {
    installed = true;
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void cleanUpAndExit(signal));
  }
  return () => void cleanups.delete(cleanup);
}

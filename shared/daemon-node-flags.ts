// Node.js flags each daemon is started with. The packaged launchers (packaging/lib/assemble-tree.sh
// runs this file), the lab and the benchmarks all read them here, so a measured daemon runs as an
// installed one does.
//
// coordinator, --v8-pool-size=1: V8 keeps a pool of worker threads (4 by default, whatever the
// machine) for concurrent marking, sweeping and parallel scavenges. The coordinator's heap is tens
// of MB, which one worker collects in time; more workers, on a small control-plane machine, take
// cores from the main thread right after each scavenge, when calls have queued. Under
// coordinator-load (2 cores, 1,000 ListHosts/s) the default pool gave a ListHosts p99 of 6.2-15.3
// ms over 10 runs (4 over 10 ms, max 28-65 ms), one worker 5.1-11.9 ms over 12 (1 over 10 ms, max
// 16-30 ms).
// coordinator, --initial-old-space-size=64 (MiB): no full collection below 64 MiB of old
// generation (see the agent's). Under coordinator-load its old generation went from 14 to 37 MB
// and V8 collected it 7 times in 25 s, pauses of 6-16 ms with ~12 calls queued behind each; with
// the floor, once (at start-up). ListHosts p99 over 14 runs with it: median 8.6 ms, 4 over 10 ms;
// over 15 without: median 9.4 ms, 6 over 10 ms (the rest of the spread is scavenges and the
// machine: the peer on the same stack shows it too).
//
// agent, --max-semi-space-size=2 (MiB): a small young generation. The agent allocates little once
// started, and V8's default 16 MiB semi-spaces alone would be a fifth of its resident memory
// (bench/agent-footprint).
// agent, --initial-old-space-size=64 (MiB): no full collection while the old generation is below
// 64 MiB (V8 takes a configured initial size as the floor of its limit). V8 otherwise set the
// limit about 10 MB above the agent's ~19 MB of live objects, and replicating a busy guest's memory
// reached it every 150-250 ms: 45 (source) and 86 (destination) mark-compacts in one 1 GiB
// vm-switchover run, pauses of 3-19 ms each, some inside the guest's pause (the flush, the device
// state). With the floor: 3 and 1 in the same run.
export const DAEMON_NODE_FLAGS = {
  coordinator: ['--v8-pool-size=1', '--initial-old-space-size=64'],
  agent: ['--max-semi-space-size=2', '--initial-old-space-size=64'],
  umbractl: [],
} as const satisfies Record<string, readonly string[]>;

export type DaemonName = keyof typeof DAEMON_NODE_FLAGS;

export function daemonNodeFlags(name: DaemonName): string[] {
  return [...DAEMON_NODE_FLAGS[name]];
}

function isDaemonName(s: string): s is DaemonName {
  return Object.hasOwn(DAEMON_NODE_FLAGS, s);
}

// `node daemon-node-flags.js NAME` prints NAME's flags on one line (for the launcher template).
if (require.main === module) {
  const name = process.argv[2] ?? '';
  if (!isDaemonName(name)) {
    process.stderr.write(`usage: daemon-node-flags.js ${Object.keys(DAEMON_NODE_FLAGS).join('|')}\n`);
    process.exit(2);
  }
  process.stdout.write(`${daemonNodeFlags(name).join(' ')}\n`);
}

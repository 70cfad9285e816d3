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
// coordinator, no --initial-old-space-size (the agent's floor below): with it the coordinator
// kept its dead old objects for up to 64 MiB, and their pointers into the young generation kept
// young objects alive through scavenges (V8 takes old objects as roots there), so scavenges copied
// and promoted more, the old generation grew faster, and so on until the full collection. Under
// coordinator-load (--trace-gc) it ran in one of two modes: old generation under 60 MB, scavenges
// 210-225 ms in 25 s, or past 64 MB by mid-run, 535-607 ms (up to 25 ms each) and ListHosts p99
// 11-14.5 ms. Without the floor V8 collects the old generation 6-7 times in 25 s (4-16 ms each)
// and scavenges take 145-190 ms: p99 4.4-7.6 ms over 9 runs, against 4.7-14.5 over 11 with it.
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
  coordinator: ['--v8-pool-size=1'],
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

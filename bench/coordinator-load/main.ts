// coordinator-load: 200 simulated agents heartbeating every second plus 1,000 ListHosts calls
// per second from operator clients; ListHosts p50/p99 for the coordinator beside a server of the
// same API on the same stack without the coordinator's checks, persistence or liveness (the floor:
// bare-peer-server.ts), measured in one run.
//
// The ListHosts load comes from list-load.c, a native generator (nghttp2 + OpenSSL, like ghz or
// h2load), built here with cc. The node:http2 generator it replaced used about 30 % of a core per
// 500 calls/s (this one about 9 %) on the 2-core machine the coordinator shares, and its own
// event-loop stalls and the CPU it took from the server were counted as server latency. It
// cannot decode a full answer, so checkDecodedAnswer does that once with grpc-js before the load.
// The measured seconds follow a ramp at the full rate (its p99 is shown apart), as h2load's
// --warm-up-time: the coordinator's code is compiled for the load in its first second there.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { daemonNodeFlags } from '../../shared/daemon-node-flags';
import { createCa, issueCertificate } from '../../shared/pki';
import { probeHostCapacity } from '../../agent/os/sysinfo-host-facts';
import { callUnary, dial } from '../../shared/grpc-client';
import { FLOW_CONTROL_WINDOW_BYTES } from '../../shared/grpc-server';
import { channelCredentials, loadTlsMaterial } from '../../shared/tls';
import { run } from '../../test/helpers/netns';
import { REPO_ROOT } from '../../test/helpers/umbra-cluster';
import { printFigures, printTable } from '../lib/report';

const AGENTS = Number(process.env.UMBRA_BENCH_AGENTS ?? 200);
const RATE = Number(process.env.UMBRA_BENCH_RATE ?? 1000);
const SECONDS = Number(process.env.UMBRA_BENCH_SECONDS ?? 20);
/** Scheduling priority (nice) of the simulated agents; UMBRA_BENCH_SIM_NICE=0 runs them beside the coordinator as equals. */
const SIM_NICE = Number(process.env.UMBRA_BENCH_SIM_NICE ?? 19);
/** Seconds at the full rate before the measured ones, reported apart (the JIT warming up to the load). */
const RAMP_SECONDS = Number(process.env.UMBRA_BENCH_RAMP_SECONDS ?? 2);
const TARGET_P99_MS = 10;
/** Load generators run as separate processes beside the server, so one event loop's pauses do not delay every call. */
const LOAD_PROCESSES = Number(process.env.UMBRA_BENCH_LOAD_PROCESSES ?? 2);
/** UMBRA_BENCH_PEER=0 measures the coordinator alone (for quicker runs while profiling it). */
const WITH_PEER = process.env.UMBRA_BENCH_PEER !== '0';
const DIST = path.join(__dirname, '..', '..');
const LIST_LOAD_SOURCE = path.join(REPO_ROOT, 'bench', 'coordinator-load', 'list-load.c');

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * The coordinator runs with the packaged launcher's node flags, then UMBRA_BENCH_COORD_NODE_ARGS
 * (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", or "--v8-pool-size=4" to override one).
 */
const COORD_NODE_ARGS = [...daemonNodeFlags('coordinator'), ...(process.env.UMBRA_BENCH_COORD_NODE_ARGS ?? '').split(/\s+/).filter(Boolean)];

/** Compiles the ListHosts load generator into `dir`; returns the binary's path. */
async function buildListLoad(dir: string): Promise<string> {
  const out = path.join(dir, 'list-load');
  // The window size comes from shared/grpc-server.ts, so the generator's cannot drift from umbractl's.
  await run('cc', ['-O2', '-Wall', '-Werror', `-DFLOW_CONTROL_WINDOW_BYTES=${FLOW_CONTROL_WINDOW_BYTES}`, '-o', out, LIST_LOAD_SOURCE, '-lnghttp2', '-lssl', '-lcrypto']);
  return out;
}

function start(command: string, args: string[], readyPattern: RegExp, name = path.basename(command)): Promise<{ child: ChildProcess; output: string[] }> {
  // Info level: the coordinator's readiness is its 'coordinator started' line; nothing is logged per call.
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, UMBRA_LOG_LEVEL: 'info' } });
  const output: string[] = [];
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer) => {
      output.push(d.toString());
      if (readyPattern.test(output.join(''))) resolve({ child, output });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d) => {
      output.push(d.toString());
      if (/first error/.test(d.toString())) process.stderr.write(d);
    });
    child.once('exit', (code) => reject(new Error(`${name} exited ${code}: ${output.join('').slice(-2000)}`)));
  });
}

function startNode(script: string, args: string[], readyPattern: RegExp, nodeArgs: string[] = []): Promise<{ child: ChildProcess; output: string[] }> {
  return start(process.execPath, [...nodeArgs, script, ...args], readyPattern, path.basename(script));
}

async function stop(child: ChildProcess): Promise<void> {
  // A child ended by a signal (the peer on SIGTERM) has no exit code, only a signal code.
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.removeAllListeners('exit');
  const done = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await done;
}

interface LoadResult {
  calls: number;
  errors: number;
  wrongCount: number;
  achievedRate: number;
  p50: number;
  p99: number;
  max: number;
  /** How late the generators sent calls against their schedule (their own lag, included in latency). */
  sendLagP99: number;
  sendLagMax: number;
  /** p99 of the ramp's calls (the seconds at full rate before the measured ones), per load process at most. */
  rampP99: number;
  loadAverage: number;
}

/**
 * One answer decoded in full by the grpc-js client, as umbractl would: the generators count hosts
 * in the raw bytes and check that count against this one.
 */
async function checkDecodedAnswer(endpoint: string, operator: { ca: string; cert: string; key: string }): Promise<void> {
  const client = dial('umbra.coordinator.v1.CoordinatorService', endpoint, channelCredentials(loadTlsMaterial(operator), { role: 'coordinator' }));
  try {
    const decoded = await callUnary<{ hosts: unknown[] }>(client, 'ListHosts', { view: 'HOST_VIEW_BASIC' });
    if (decoded.hosts.length !== AGENTS) throw new Error(`decoded answer has ${decoded.hosts.length} hosts, expected ${AGENTS}`);
  } finally {
    client.close();
  }
}

async function measure(endpoint: string, dir: string, operator: { ca: string; cert: string; key: string }, listLoad: string): Promise<LoadResult> {
  // The simulated agents stand for 200 other machines; here they share the coordinator's 2 cores
  // (about a fifth of one) and, at equal priority, preempted it. At the lowest priority they still
  // get all the CPU they need on a machine a third busy, but the coordinator's wake-ups come first.
  const simScript = path.join(DIST, 'bench', 'coordinator-load', 'agents-sim.js');
  const sim = await start('nice', ['-n', String(SIM_NICE), process.execPath, simScript, endpoint, path.join(dir, 'agents.json'), path.join(dir, 'facts.json'), '1000'], /ready/, 'agents-sim.js');
  try {
    await checkDecodedAnswer(endpoint, operator);
    const loads = await Promise.all(
      Array.from({ length: LOAD_PROCESSES }, () =>
        start(listLoad, [endpoint, operator.ca, operator.cert, operator.key, String(RATE / LOAD_PROCESSES), String(SECONDS), String(AGENTS), String(RAMP_SECONDS)], /\}\s*$/),
      ),
    );
    await Promise.all(loads.map((l) => (l.child.exitCode !== null ? undefined : new Promise((r) => l.child.once('exit', r)))));
    const parts = loads.map((l) => JSON.parse(l.output.join('').split('\n').filter((line) => line.startsWith('{')).pop()!) as { calls: number; errors: number; wrongCount: number; achievedRate: number; sendLagP50Ms: number; sendLagP99Ms: number; sendLagMaxMs: number; fromSendP50Ms: number; fromSendP99Ms: number; rampP99Ms: number | null; p99BySecondMs: Array<number | null>; latenciesMs: number[] });
    console.log(`  per load process: send lag p50/p99 ${parts.map((p) => `${p.sendLagP50Ms}/${p.sendLagP99Ms}`).join(', ')} ms; from the actual send p50/p99 ${parts.map((p) => `${p.fromSendP50Ms}/${p.fromSendP99Ms}`).join(', ')} ms`);
    console.log(`  p99 by second of the run (ms), per load process:\n${parts.map((p) => `    ${p.p99BySecondMs.map((x) => (x === null ? '-' : x.toFixed(1))).join(' ')}`).join('\n')}`);
    const all = parts.flatMap((p) => p.latenciesMs).sort((a, b) => a - b);
    const q = (p: number) => (all.length ? all[Math.min(all.length - 1, Math.floor(p * all.length))] : NaN);
    return {
      calls: all.length,
      errors: parts.reduce((a, p) => a + p.errors, 0),
      wrongCount: parts.reduce((a, p) => a + p.wrongCount, 0),
      achievedRate: parts.reduce((a, p) => a + p.achievedRate, 0),
      p50: q(0.5),
      p99: q(0.99),
      max: all[all.length - 1] ?? NaN,
      sendLagP99: Math.max(...parts.map((p) => p.sendLagP99Ms)),
      sendLagMax: Math.max(...parts.map((p) => p.sendLagMaxMs)),
      rampP99: Math.max(...parts.map((p) => p.rampP99Ms ?? NaN)),
      loadAverage: os.loadavg()[0],
    };
  } finally {
    await stop(sim.child);
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'umbra-coordload-'));
  const children: ChildProcess[] = [];
  try {
    console.log(`issuing ${AGENTS} agent certificates...`);
    const caDir = path.join(dir, 'ca');
    await createCa(caDir);
    const ca = path.join(caDir, 'ca.crt');
    const issue = async (role: 'coordinator' | 'agent' | 'operator', name: string) => {
      const f = await issueCertificate({ caDir, identity: { role, name }, outDir: path.join(dir, 'certs') });
      return { ca, cert: f.certPath, key: f.keyPath };
    };
    const coordTls = await issue('coordinator', 'coordinator');
    const operator = await issue('operator', 'bench');
    const agents = [];
    for (let i = 0; i < AGENTS; i++) agents.push({ id: `sim-${String(i).padStart(4, '0')}`, ...(await issue('agent', `sim-${String(i).padStart(4, '0')}`)) });
    writeFileSync(path.join(dir, 'agents.json'), JSON.stringify(agents));
    const listLoad = await buildListLoad(dir);
    const capacity = await probeHostCapacity();
    writeFileSync(path.join(dir, 'facts.json'), JSON.stringify({ host_id: 'x', failure_domain: 'rack-1', capacity, agent_endpoint: '127.0.1.1:9', agent_version: 'bench' }));

    const port = await freePort();
    writeFileSync(path.join(dir, 'coordinator.yaml'), JSON.stringify({ listen: `127.0.0.1:${port}`, data_dir: path.join(dir, 'data'), metrics_listen: '', tls: coordTls }));
    const coord = await startNode(path.join(DIST, 'coordinator', 'main.js'), ['--config', path.join(dir, 'coordinator.yaml')], /coordinator started/, COORD_NODE_ARGS);
    children.push(coord.child);
    console.log(`umbra coordinator: ${AGENTS} agents + ${RATE} ListHosts/s for ${SECONDS} s...`);
    const ours = await measure(`127.0.0.1:${port}`, dir, operator, listLoad);
    await stop(coord.child);

    let theirs: LoadResult = { calls: 0, errors: 0, wrongCount: 0, achievedRate: NaN, p50: NaN, p99: NaN, max: NaN, sendLagP99: NaN, sendLagMax: NaN, rampP99: NaN, loadAverage: NaN };
    if (WITH_PEER) {
      const peerPort = await freePort();
      const peer = await startNode(path.join(DIST, 'bench', 'coordinator-load', 'bare-peer-server.js'), [`127.0.0.1:${peerPort}`, coordTls.ca, coordTls.cert, coordTls.key], /listening/);
      children.push(peer.child);
      console.log(`peer (the same API on the same server stack, without the coordinator's checks, persistence and liveness): the same load...`);
      theirs = await measure(`127.0.0.1:${peerPort}`, dir, operator, listLoad);
      await stop(peer.child);
    }

    printTable(`coordinator-load: ${AGENTS} agents heartbeating every 1 s + ${RATE} ListHosts/s for ${SECONDS} s after a ${RAMP_SECONDS} s ramp at that rate (loopback, mTLS)`, 'same stack, no logic', [
      { metric: 'ListHosts p50', ours: ours.p50, peer: theirs.p50, unit: 'ms' },
      { metric: 'ListHosts p99', ours: ours.p99, peer: theirs.p99, unit: 'ms', target: `<= ${TARGET_P99_MS}` },
      { metric: 'ListHosts p99 in the ramp', ours: ours.rampP99, peer: theirs.rampP99, unit: 'ms' },
      { metric: 'ListHosts max', ours: ours.max, peer: theirs.max, unit: 'ms' },
      { metric: 'achieved rate', ours: ours.achievedRate, peer: theirs.achievedRate, unit: 'calls/s' },
      { metric: 'errors', ours: ours.errors, peer: theirs.errors, unit: 'calls' },
      { metric: 'answers missing hosts', ours: ours.wrongCount, peer: theirs.wrongCount, unit: 'calls' },
      { metric: 'generator send lag p99', ours: ours.sendLagP99, peer: theirs.sendLagP99, unit: 'ms' },
      { metric: 'load average (1 min)', ours: ours.loadAverage, peer: theirs.loadAverage, unit: '' },
    ]);
    printFigures({
      agents: AGENTS,
      list_rate_per_s: RATE,
      umbra_p50_ms: Number(ours.p50.toFixed(3)),
      umbra_p99_ms: Number(ours.p99.toFixed(3)),
      umbra_ramp_p99_ms: Number(ours.rampP99.toFixed(3)),
      ramp_s: RAMP_SECONDS,
      agents_nice: SIM_NICE,
      umbra_max_ms: Number(ours.max.toFixed(3)),
      umbra_errors: ours.errors,
      umbra_send_lag_p99_ms: Number(ours.sendLagP99.toFixed(3)),
      umbra_send_lag_max_ms: Number(ours.sendLagMax.toFixed(3)),
      umbra_load_average_1m: Number(ours.loadAverage.toFixed(2)),
      peer_p50_ms: Number(theirs.p50.toFixed(3)),
      peer_p99_ms: Number(theirs.p99.toFixed(3)),
      peer_ramp_p99_ms: Number(theirs.rampP99.toFixed(3)),
      peer_max_ms: Number(theirs.max.toFixed(3)),
      peer_errors: theirs.errors,
      peer_send_lag_p99_ms: Number(theirs.sendLagP99.toFixed(3)),
      peer_load_average_1m: Number(theirs.loadAverage.toFixed(2)),
      umbra_p99_target_met: ours.p99 <= TARGET_P99_MS && ours.errors === 0,
      load_average_1m: Number(os.loadavg()[0].toFixed(2)),
    });
  } finally {
    for (const c of children) await stop(c).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

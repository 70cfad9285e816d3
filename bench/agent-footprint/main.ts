// agent-footprint: the agent's idle footprint over 60 s (RSS, CPU seconds) beside keepalived's,
// the daemon operators already run on hypervisors for address failover, measured in one run.
// Both run in their own network namespace; the agent is registered with a coordinator.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { NetnsLab, waitFor } from '../../test/helpers/netns';
import { createPkiFixture } from '../../test/helpers/pki-fixture';
import { AGENT_MAIN, COORDINATOR_MAIN, agentConfig, coordinatorConfig, startNode, waitForLog } from '../../test/helpers/umbra-cluster';
import { processTreeUsage } from '../lib/process-usage';
import { printFigures, printTable } from '../lib/report';

const IDLE_S = Number(process.env.UMBRA_BENCH_IDLE_S ?? 60);
// Start-up (host probing, registration) is not idle: V8 returns its garbage within ~20 s.
const WARMUP_S = 30;
const TARGET_RSS_MB = 80;
const TARGET_CPU_PCT = 1;

async function main(): Promise<void> {
  const pki = await createPkiFixture(['bench-hv']);
  const lab = new NetnsLab('b');
  try {
    await lab.start();
    const coordNs = await lab.addHost('coord');
    const agentNs = await lab.addHost('hv');
    const vrrpNs = await lab.addHost('vrrp');
    await lab.link(coordNs, { bridge: 'mgmt', ifname: 'eth0', address: '10.79.0.1/24' });
    await lab.link(agentNs, { bridge: 'mgmt', ifname: 'eth0', address: '10.79.0.11/24' });
    await lab.link(vrrpNs, { bridge: 'mgmt', ifname: 'eth0', address: '10.79.0.21/24' });
    const coordinator = startNode(lab, coordNs, [COORDINATOR_MAIN, '--config', coordinatorConfig(path.join(pki.dir, 'c'), pki.coordinator)]);
    await waitForLog(coordinator, /coordinator started/, 'coordinator');
    const cfg = agentConfig(path.join(pki.dir, 'a'), 'bench-hv', '10.79.0.11', '10.79.0.1', pki.agent('bench-hv'), { heartbeat_interval_ms: 1000 });
    // startNode passes the packaged launcher's node flags (shared/daemon-node-flags.ts).
    const agent = startNode(lab, agentNs, [AGENT_MAIN, '--config', cfg], { UMBRA_LOG_LEVEL: 'warn' });
    await waitForLog(coordinator, /host bench-hv joined|registered/, 'agent registration');

    const kaConf = path.join(pki.dir, 'keepalived.conf');
    writeFileSync(kaConf, `global_defs {\n  script_user root\n  enable_script_security\n}\nvrrp_instance VI_1 {\n  state MASTER\n  interface eth0\n  virtual_router_id 51\n  priority 150\n  advert_int 1\n  virtual_ipaddress {\n    10.79.0.100/24\n  }\n}\n`);
    const ka = lab.spawn(vrrpNs, 'keepalived', ['--dont-fork', '--log-console', '--vrrp', '-f', kaConf, '-p', path.join(pki.dir, 'ka.pid'), '-r', path.join(pki.dir, 'vrrp.pid')]);
    await waitFor('keepalived master', async () => (await lab.exec(vrrpNs, 'ip', ['-4', 'addr', 'show', 'eth0'])).includes('10.79.0.100'), 15000);

    // ip netns exec execs the program in place, so the spawned PID is the daemon's own.
    const agentPid = agent.child.pid!;
    const rssAtStartMb = processTreeUsage(agentPid).rssBytes / 1024 / 1024;
    const kaPid = ka.pid!;
    console.log(`warming up ${WARMUP_S} s, then measuring ${IDLE_S} s of idle...`);
    await new Promise((r) => setTimeout(r, WARMUP_S * 1000));
    const a0 = processTreeUsage(agentPid);
    const k0 = processTreeUsage(kaPid);
    let agentPeakRss = a0.rssBytes;
    let kaPeakRss = k0.rssBytes;
    const sampler = setInterval(() => {
      agentPeakRss = Math.max(agentPeakRss, processTreeUsage(agentPid).rssBytes);
      kaPeakRss = Math.max(kaPeakRss, processTreeUsage(kaPid).rssBytes);
    }, 1000);
    await new Promise((r) => setTimeout(r, IDLE_S * 1000));
    clearInterval(sampler);
    const a1 = processTreeUsage(agentPid);
    const k1 = processTreeUsage(kaPid);
    const mb = (b: number) => b / 1024 / 1024;
    const agentCpuS = a1.cpuSeconds - a0.cpuSeconds;
    const kaCpuS = k1.cpuSeconds - k0.cpuSeconds;
    const agentCpuPct = (agentCpuS / IDLE_S) * 100;
    const kaCpuPct = (kaCpuS / IDLE_S) * 100;
    printTable(`agent-footprint: ${IDLE_S} s idle (agent registered, heartbeating every 1 s; keepalived MASTER, advert_int 1)`, 'keepalived', [
      { metric: 'peak RSS while idle', ours: mb(agentPeakRss), peer: mb(kaPeakRss), unit: 'MB', target: `<= ${TARGET_RSS_MB}` },
      { metric: 'RSS at end of start-up', ours: rssAtStartMb, unit: 'MB' },
      { metric: 'CPU time', ours: agentCpuS, peer: kaCpuS, unit: 's' },
      { metric: 'CPU share of one core', ours: agentCpuPct, peer: kaCpuPct, unit: '%', target: `<= ${TARGET_CPU_PCT}` },
    ]);
    printFigures({
      idle_s: IDLE_S,
      umbra_rss_mb: Number(mb(agentPeakRss).toFixed(1)),
      umbra_startup_rss_mb: Number(rssAtStartMb.toFixed(1)),
      keepalived_rss_mb: Number(mb(kaPeakRss).toFixed(1)),
      umbra_cpu_s: Number(agentCpuS.toFixed(3)),
      keepalived_cpu_s: Number(kaCpuS.toFixed(3)),
      umbra_cpu_pct: Number(agentCpuPct.toFixed(3)),
      keepalived_cpu_pct: Number(kaCpuPct.toFixed(3)),
      umbra_rss_target_met: mb(agentPeakRss) <= TARGET_RSS_MB,
      umbra_cpu_target_met: agentCpuPct <= TARGET_CPU_PCT,
    });
  } finally {
    await lab.cleanup();
    pki.cleanup();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

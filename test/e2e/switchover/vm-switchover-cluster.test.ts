// The VM switchover end to end with real processes: a coordinator and two agents in network
// namespaces; hv-a's agent launches a QEMU (TCG) guest that takes its address from dnsmasq; its
// RAM is shadowed to hv-b, where the coordinator has a shadow QEMU prepared; TriggerMigration
// moves the guest: its counter continues (same boot), the same address answers, the source is
// paused. A switchover back to a host without a ready shadow is refused.
import test from 'ava';
import path from 'node:path';
import { waitFor } from '../../helpers/netns';
import { queryGuestStat, waitForGuestStat } from '../../helpers/guest/guest-network';
import { AGENT_MAIN } from '../../helpers/umbra-cluster';
import { type WireSwitchover, pidExists } from '../../helpers/vm-cluster';
import { PORT, SwitchoverCluster, VM, skipReason } from './switchover-fixture';

const why = skipReason();
if (why) {
  test(`VM switchover across agents (skipped: ${why})`, (t) => {
    t.log(`skipped: ${why}`);
    t.pass();
  });
} else {
  const cluster = new SwitchoverCluster();
  const ctl = <T>(args: string[]) => cluster.ctl<T>(args);

  test.before(async () => {
    await cluster.start('s');
  });

  test.after.always(async () => {
    await cluster.cleanup();
  });

  test.serial('a switchover without a ready shadow is refused with the reason', async (t) => {
    await waitForGuestStat(cluster.lab, cluster.ns.cli, cluster.guestIp, PORT, 60000);
    const err = await t.throwsAsync(ctl(['migrate', VM, '--to', 'hv-b']));
    t.regex(String(err?.message), /no shadow VM|not current|not shadowed|no IP|shadow/);
  });

  test.serial('the running guest switches over to hv-b: counter continues, same address answers, source paused', async (t) => {
    await ctl(['replication', 'start', VM, '--from', 'hv-a', '--to', 'hv-b']);
    const before = await waitForGuestStat(cluster.lab, cluster.ns.cli, cluster.guestIp, PORT, 30000);
    // Shadow ready: IP shadow current, shadow QEMU waiting, memory streaming with an acked epoch.
    const ev = await waitFor('switchover accepted', async () => {
      try {
        return await ctl<{ switchover?: WireSwitchover } & WireSwitchover>(['migrate', VM, '--to', 'hv-b']);
      } catch (err) {
        void err;
        return undefined;
      }
    }, 90000, 2000).catch((err) => {
      throw new Error(`${(err as Error).message}; hv-b agent: ${cluster.agents['hv-b'].log.filter((l) => /shadow|qemu|error/i.test(l)).slice(-8).join('\n')}`);
    });
    const sw = (ev.switchover ?? ev) as WireSwitchover;
    t.log(sw.steps.map((s) => `${s.step}@${s.host_id} ${s.duration_ms.toFixed(1)} ms ${s.ok ? 'ok' : s.error}`).join('\n'));
    t.is(sw.status, 'SUCCEEDED', sw.error);
    t.deepEqual(sw.steps.slice(0, 5).map((s) => s.step), ['pause-source', 'flush-memory', 'migrate-device-state', 'resume-destination', 'switch-ip']);
    // hv-b activated the address once it saw its QEMU's load of the device state over (beside the
    // resume), not while the load ran: the activation's start (its line's time less its duration)
    // is not before the agent saw the load end (1 ms: the log time's resolution).
    const bLog = cluster.agents['hv-b'].log;
    const line = (msg: string) => bLog.map((l) => { try { return JSON.parse(l) as Record<string, unknown>; } catch { return {}; } }).find((r) => r.msg === msg);
    const resumed = line('armed resume: the guest runs here');
    const activated = line('ip activated');
    const activationStartMs = Date.parse(String(activated?.time)) - Number(activated?.totalMs);
    t.true(Number(resumed?.seenAtMs) > 0 && activationStartMs >= Number(resumed?.seenAtMs) - 1, `load seen at ${String(resumed?.seenAtMs)}, activation started at ${activationStartMs}`);
    const after = await waitForGuestStat(cluster.lab, cluster.ns.cli, cluster.guestIp, PORT, 20000);
    t.is(after.boot, before.boot, 'same boot: no reboot');
    const later = await waitFor('counter advancing on hv-b', async () => {
      const s = await queryGuestStat(cluster.lab, cluster.ns.cli, cluster.guestIp, PORT);
      return s && s.counter > after.counter ? s : undefined;
    }, 15000, 300);
    t.true(later.counter > before.counter);
    const healthA = JSON.parse(await cluster.lab.exec(cluster.ns['hv-a'], process.execPath, [AGENT_MAIN, 'health', '--json', '--config', path.join(cluster.agentDir('hv-a'), 'agent.yaml')])) as {
      report: { capabilities: Array<{ name: string; detail: string }> };
    };
    t.regex(healthA.report.capabilities.find((c) => c.name === 'vms')!.detail, /g1 postmigrate/);
    const healthB = JSON.parse(await cluster.lab.exec(cluster.ns['hv-b'], process.execPath, [AGENT_MAIN, 'health', '--json', '--config', path.join(cluster.agentDir('hv-b'), 'agent.yaml')])) as {
      report: { capabilities: Array<{ name: string; detail: string }> };
    };
    t.regex(healthB.report.capabilities.find((c) => c.name === 'vms')!.detail, /g1 running/);
  });

  test.serial("with memory following the IP shadows, the coordinator re-shadows the guest's RAM after the switchover by itself, and the guest can go back", async (t) => {
    // The operator's replication from hv-a ended with the switchover; the coordinator restarts with
    // memory_follows_shadows on (the product's default).
    await cluster.killCoordinator();
    cluster.setSwitchoverConfig({ memory_follows_shadows: true });
    await cluster.startCoordinator();
    await cluster.waitHostsUp();
    interface Replication {
      source_host: string;
      shadow_hosts: string[];
      automatic: boolean;
      status: { shadows: Array<{ host_id: string; state: string; acked_epoch: string }> } | null;
    }
    const streamingFrom = (source: string, shadow: string) =>
      waitFor(`replication from ${source} to ${shadow}, started by the coordinator, with a full copy acknowledged`, async () => {
        const [r] = await ctl<Replication[]>(['replication', '--vm', VM]);
        const l = r?.status?.shadows.find((x) => x.host_id === shadow);
        return r && r.source_host === source && r.automatic && l?.state === 'streaming' && Number(l.acked_epoch) > 0 ? r : undefined;
      }, 60000, 500);
    // g1 runs on hv-b; its one IP shadow is on hv-a, which still holds the paused source QEMU.
    const r = await streamingFrom('hv-b', 'hv-a');
    t.deepEqual(r.shadow_hosts, ['hv-a']);
    // hv-a had no image (it was the source): it seeded one from the paused copy, and hv-b sent only what differed.
    const logged = (host: 'hv-a' | 'hv-b', re: RegExp) => cluster.agents[host].log.some((l) => re.test(l));
    t.true(logged('hv-a', /shadow image seeded from the local copy of the VM/), 'hv-a seeded its image from the paused copy');
    t.true(logged('hv-b', /shadow image compared: owes only the blocks that differ/), 'hv-b compared its RAM with the digest');
    const before = await waitForGuestStat(cluster.lab, cluster.ns.cli, cluster.guestIp, PORT, 20000);
    const vmsOnA = async () => {
      // The report, healthy or not (health exits 1 while, e.g., the agent reconnects to the restarted coordinator).
      const cmd = `'${process.execPath}' '${AGENT_MAIN}' health --json --config '${path.join(cluster.agentDir('hv-a'), 'agent.yaml')}'; exit 0`;
      const h = JSON.parse(await cluster.lab.exec(cluster.ns['hv-a'], 'sh', ['-c', cmd])) as {
        report: { capabilities: Array<{ name: string; detail: string }> };
      };
      return h.report.capabilities.find((c) => c.name === 'vms')!.detail;
    };
    const stalePid = Number(/g1 postmigrate pid (\d+)/.exec(await vmsOnA())?.[1]);
    t.true(stalePid > 0, 'hv-a holds the paused copy the guest left');
    const back = await waitFor('switchover back to hv-a accepted', async () => {
      try {
        return await ctl<{ switchover?: WireSwitchover } & WireSwitchover>(['migrate', VM, '--to', 'hv-a']);
      } catch {
        return undefined;
      }
    }, 90000, 2000);
    const sw = (back.switchover ?? back) as WireSwitchover;
    t.is(sw.status, 'SUCCEEDED', sw.error);
    const after = await waitFor('counter advancing on hv-a', async () => {
      const s = await queryGuestStat(cluster.lab, cluster.ns.cli, cluster.guestIp, PORT);
      return s && s.counter > before.counter ? s : undefined;
    }, 20000, 300);
    t.is(after.boot, before.boot, 'same boot: no reboot');
    t.regex(await vmsOnA(), /g1 running/);
    await waitFor('the paused copy the promoted shadow replaced is stopped', async () => !pidExists(stalePid), 10000, 200);
    // Back on the host whose config names its first QEMU, the guest now runs in the promoted
    // shadow QEMU, and its RAM is found there: replication follows from hv-a.
    await streamingFrom('hv-a', 'hv-b');
    // hv-b kept the image the guest ran on there: its digest spared the full copy again.
    t.true(logged('hv-b', /digest of the image already here/), 'hv-b sent the digest of the image it holds');
  });
}

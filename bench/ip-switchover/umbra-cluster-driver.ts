// Umbra's side of the ip-switchover bench, driven end to end: a coordinator and two agents in the
// bench's host namespaces (management bridge beside the service one), a dnsmasq that leases the
// service address to a guest's MAC, so the source agent learns it from DHCP, the coordinator places
// the shadow, and each switchover is a TriggerMigration with fencing: TriggerMigrationWatch, what
// `umbractl migrate` calls, from a client started and connected before the probing and ended after
// it (trigger-migration-cli). With umbractl itself, the process's exit 20-30 ms after the switchover
// stalled this machine's vCPUs for 6-9 ms, a second gap in every run that operators, whose umbractl
// does not run on the hypervisors, never see.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { type NetnsLab, waitFor } from '../../test/helpers/netns';
import { createPkiFixture, type PkiFixture } from '../../test/helpers/pki-fixture';
import { startTriggerClient } from '../../test/helpers/trigger-client';
import {
  AGENT_MAIN, COORDINATOR_MAIN, COORDINATOR_PORT, REPO_ROOT, UMBRACTL, type ProcessHandle, agentConfig, startNode, waitForLog, writeYaml,
} from '../../test/helpers/umbra-cluster';

const MGMT = '10.76.0';
const COORD_IP = `${MGMT}.1`;
const GUEST_MAC = '52:54:00:78:00:64';
const VM_ID = 'svc-vm';
const UDHCPC_SCRIPT = path.join(REPO_ROOT, 'test', 'os', 'ipshadow', 'udhcpc-record.sh');

export interface SwitchoverResult {
  status: string;
  total_ms: number;
  fencing_token: string;
  steps: Array<{ step: string; host_id: string; duration_ms: number; ok: boolean }>;
}

interface ShadowsJson {
  vms: Array<{ vm_id: string; active_host: string; version: string }>;
  shadows: Array<{ vm_id: string; host_id: string; state: string; version: string }>;
}

export interface PreparedTrigger {
  fire(): Promise<SwitchoverResult>;
  close(): Promise<void>;
}

export class UmbraClusterDriver {
  private readonly procs: ChildProcess[] = [];
  private coordinator!: ProcessHandle;
  private readonly agents: ProcessHandle[] = [];

  private constructor(private readonly lab: NetnsLab, private readonly pki: PkiFixture, private readonly coordNs: string) {}

  /** `hosts` maps the agents' host ids to the bench namespaces (each with eth0 on the service bridge). */
  static async start(lab: NetnsLab, opts: { hosts: Record<string, string>; serviceBridge: string; subnet: string; vip: string; dir: string }): Promise<UmbraClusterDriver> {
    const ids = Object.keys(opts.hosts);
    const pki = await createPkiFixture(ids);
    const coordNs = await lab.addHost('coord');
    const d = new UmbraClusterDriver(lab, pki, coordNs);
    await lab.link(coordNs, { bridge: 'mgmt', ifname: 'eth0', address: `${COORD_IP}/24` });
    const coordCfg = writeYaml(path.join(opts.dir, 'coord', 'coordinator.yaml'), {
      listen: `0.0.0.0:${COORDINATOR_PORT}`,
      data_dir: path.join(opts.dir, 'coord', 'data'),
      heartbeat_interval_ms: 300,
      liveness: { suspect_after_ms: 3000, down_after_ms: 6000 },
      tls: pki.coordinator,
      // One machine under the namespaces: its load is no host's own.
      ipshadow: { shadowing_threshold: 0.1, placement_uses_host_load: false, max_shadowed_vms: 1, shadowing_refresh_interval_ms: 500, reconcile_interval_ms: 5000 },
    });
    d.coordinator = startNode(lab, coordNs, [COORDINATOR_MAIN, '--config', coordCfg], { UMBRA_LOG_LEVEL: 'warn' });
    await waitFor('coordinator port', async () => (await lab.exec(coordNs, 'ss', ['-ltn'])).includes(`:${COORDINATOR_PORT}`), 20000);
    let n = 11;
    for (const id of ids) {
      const ns = opts.hosts[id];
      const ip = `${MGMT}.${n++}`;
      await lab.link(ns, { bridge: 'mgmt', ifname: 'eth1', address: `${ip}/24` });
      const cfg = agentConfig(path.join(opts.dir, id), id, ip, COORD_IP, pki.agent(id), {
        ipshadow: { capture_interfaces: ['eth0'], mode: 'address', interface: 'eth0', report_interval_ms: 1000, vms: id === ids[0] ? [{ id: VM_ID, mac: GUEST_MAC }] : [] },
      });
      const a = startNode(lab, ns, [AGENT_MAIN, '--config', cfg]);
      d.agents.push(a);
      await waitForLog(a, /agent started/, `agent ${id}`, 20000);
    }
    // The DHCP server leases the service address to the guest's MAC; the guest asks for broadcast
    // replies, so the source agent's capture on its service port sees the ACK.
    const srv = await lab.addHost('dhcp');
    await lab.link(srv, { bridge: opts.serviceBridge, ifname: 'eth0', address: `${opts.subnet}.1/24` });
    const guest = await lab.addHost('guest');
    await lab.link(guest, { bridge: opts.serviceBridge, ifname: 'eth0', mac: GUEST_MAC });
    d.procs.push(
      lab.spawn(srv, 'dnsmasq', [
        '--no-daemon', '--conf-file=/dev/null', '--port=0', '--user=root', '--bind-interfaces', '--interface=eth0', '--except-interface=lo',
        '--dhcp-authoritative', '--no-ping', `--dhcp-leasefile=${path.join(opts.dir, 'dnsmasq.leases')}`,
        `--dhcp-range=${opts.subnet}.0,static,255.255.255.0,600`, `--dhcp-host=${GUEST_MAC},${opts.vip}`,
      ]),
      lab.spawn(guest, 'udhcpc', ['-f', '-B', '-i', 'eth0', '-s', UDHCPC_SCRIPT, '-t', '20', '-T', '1', '-A', '2']),
    );
    return d;
  }

  private async ctl<T>(args: string[]): Promise<T> {
    const out = await this.lab.exec(this.coordNs, process.execPath, [
      UMBRACTL, '--coordinator', `${COORD_IP}:${COORDINATOR_PORT}`, '--ca', this.pki.operator.ca, '--cert', this.pki.operator.cert, '--key', this.pki.operator.key, ...args, '--json',
    ]);
    return JSON.parse(out) as T;
  }

  /** Waits until the VM is active on `hostId` and every other host holds its current version. */
  async ready(hostId: string, holds: () => Promise<boolean>): Promise<void> {
    await waitFor(`vm active on ${hostId} with a current shadow elsewhere`, async () => {
      const s = await this.ctl<ShadowsJson>(['shadows']);
      const vm = s.vms.find((v) => v.vm_id === VM_ID);
      const current = s.shadows.filter((x) => x.vm_id === VM_ID && x.version === vm?.version && x.state === 'warm');
      return vm?.active_host === hostId && current.length > 0 && (await holds());
    }, 60000, 200).catch((err) => {
      throw new Error(`${(err as Error).message}\ncoordinator: ${this.coordinator.log.slice(-10).join('\n')}\nagents: ${this.agents.map((a) => a.log.slice(-6).join('\n')).join('\n--\n')}`);
    });
  }

  /**
   * A switchover to `destination`, ready to fire: its client is connected now, `fire` makes the
   * call, and `close` (after the measurement) lets the client exit.
   */
  async prepareTrigger(destination: string): Promise<PreparedTrigger> {
    const client = await startTriggerClient(this.lab, this.coordNs, {
      endpoint: `${COORD_IP}:${COORDINATOR_PORT}`, identity: this.pki.operator, vm: VM_ID, destination, timeoutMs: 30000,
    });
    return {
      fire: async () => {
        const report = await client.fire();
        if (!report.switchover) throw new Error(`umbra switchover to ${destination}: ${report.error ?? 'no outcome'}`);
        return report.switchover;
      },
      close: () => client.close(),
    };
  }

  /** Writes each agent's and the coordinator's kept log lines to `dir` (bench --trace). */
  dumpLogs(dir: string): void {
    this.agents.forEach((a, i) => writeFileSync(path.join(dir, `agent-${i}.log`), a.log.join('\n') + '\n'));
    writeFileSync(path.join(dir, 'coordinator.log'), this.coordinator.log.join('\n') + '\n');
  }

  async close(): Promise<void> {
    for (const p of [...this.procs, ...this.agents.map((a) => a.child), this.coordinator?.child].filter(Boolean)) await this.lab.stop(p as ChildProcess, 2000);
    this.pki.cleanup();
  }
}

// The reconciliation sweep: for each VM, asks the hosts that may hold its address whether they do,
// and compares the lease record with where the VM runs. Safe fixes (deactivate extra holders,
// activate on the recorded host when nobody holds it and that host is up, rewrite a stale lease
// record) are made with a fresh fencing token and audited; the rest is audited as an alert.
// After a coordinator restart, a VM whose host (active or shadow) has not been heard from yet and
// is still in the restart grace is left alone: no "not up" alert, no repair, until it is known.
import type { Logger } from 'pino';
import { errorMessage } from '../../shared/errors';
import type { HostRecord } from '../../shared/host-types';
import type { KeyedMutex } from '../../shared/keyed-mutex';
import type { EventLog } from '../core/event-log';
import type { LeaseBackend } from '../leases/lease-backend';
import type { VmIpRecord, VmIpRegistry } from '../shadow/vm-ip-registry';
import type { FencingCounter } from './fencing-counter';
import type { IpAgentPort } from './ip-agent-port';

export interface ReconcilerDeps {
  vms: VmIpRegistry;
  /**
   * `awaitingContact`: the host is known from the store but not heard from since the coordinator
   * started, and the restart grace lasts (HostRegistry.awaitingContact); its state is no verdict.
   */
  hosts: { list(): HostRecord[]; awaitingContact?(hostId: string): boolean };
  shadowHosts(vmId: string): string[];
  agents: IpAgentPort;
  leases: LeaseBackend;
  fencing: FencingCounter;
  events: Pick<EventLog, 'append'>;
  locks: KeyedMutex;
  logger: Logger;
}

export interface SweepOutcome {
  checked: number;
  fixed: number;
  alerts: number;
  /** VMs whose address was not checked: a host of theirs awaits contact after a restart. */
  deferred: number;
}

export class IpReconciler {
  /** Last alert per VM: a standing problem is audited once, not at every sweep. */
  private readonly lastAlert = new Map<string, string>();

  constructor(private readonly d: ReconcilerDeps) {}

  async sweep(): Promise<SweepOutcome> {
    const out: SweepOutcome = { checked: 0, fixed: 0, alerts: 0, deferred: 0 };
    for (const vm of this.d.vms.list()) {
      await this.d.locks.run(vm.vm_id, async () => {
        const current = this.d.vms.find(vm.vm_id) ?? vm;
        out.checked++;
        const r = await this.check(current);
        out.fixed += r.fixed;
        out.alerts += r.alerts;
        if (r.deferred) out.deferred++;
      });
    }
    return out;
  }

  private async check(vm: VmIpRecord): Promise<{ fixed: number; alerts: number; deferred: boolean }> {
    let fixed = 0;
    let alerts = 0;
    const up = new Set(this.d.hosts.list().filter((h) => h.state === 'HOST_STATE_UP').map((h) => h.facts.host_id));
    const involved = [...new Set([vm.active_host, ...this.d.shadowHosts(vm.vm_id)])];
    // A host restored after a restart and not heard from yet may look up (stored state) or down
    // (stored before the restart) without either being true: where the address is, and what to
    // do about it, waits until its agent is back or the grace gives it a verdict.
    const waitingFor = involved.filter((h) => this.d.hosts.awaitingContact?.(h) === true);
    const deferred = waitingFor.length > 0;
    const candidates = deferred ? [] : involved.filter((h) => up.has(h));
    const holders: string[] = [];
    const unreachable: string[] = [];
    for (const h of candidates) {
      try {
        const s = await this.d.agents.state(h, vm.config);
        await this.d.fencing.raiseTo(s.fencingToken);
        if (s.active) holders.push(h);
      } catch (err) {
        unreachable.push(`${h}: ${errorMessage(err)}`);
      }
    }
    let alerted = false;
    const alert = async (message: string) => {
      alerts++;
      alerted = true;
      if (this.lastAlert.get(vm.vm_id) === message) return;
      this.lastAlert.set(vm.vm_id, message);
      await this.d.events.append({ kind: 'EVENT_KIND_ALERT', host_id: vm.active_host, vm_id: vm.vm_id, message, attributes: { address: vm.config.address } });
    };
    const fix = async (hostId: string, message: string, work: (token: number) => Promise<unknown>) => {
      const token = await this.d.fencing.next();
      try {
        await work(token);
        fixed++;
        await this.d.events.append({ kind: 'EVENT_KIND_RECONCILED', host_id: hostId, vm_id: vm.vm_id, message, attributes: { address: vm.config.address, fencing_token: String(token) } });
      } catch (err) {
        await alert(`${message} failed: ${errorMessage(err)}`);
      }
    };
    if (deferred) {
      this.d.logger.debug({ vmId: vm.vm_id, awaitingContact: waitingFor }, 'address check deferred: host not heard from since the restart');
    } else if (unreachable.length === 0) {
      const extra = holders.filter((h) => h !== vm.active_host);
      if (holders.includes(vm.active_host)) {
        for (const h of extra) {
          await fix(h, `${vm.config.address} of ${vm.vm_id} was also active on ${h} (runs on ${vm.active_host}): deactivated there`, (t) => this.d.agents.deactivate(h, vm.config, t));
        }
      } else if (extra.length === 0) {
        if (up.has(vm.active_host)) {
          await fix(vm.active_host, `${vm.config.address} of ${vm.vm_id} was active nowhere: activated on ${vm.active_host}`, (t) => this.d.agents.activate(vm.active_host, vm.config, t));
        } else {
          await alert(`${vm.config.address} of ${vm.vm_id} is active nowhere and its host ${vm.active_host} is not up`);
        }
      } else {
        await alert(`${vm.config.address} of ${vm.vm_id} is active on ${extra.join(', ')} but the VM runs on ${vm.active_host}: left for an operator`);
      }
    } else if (!up.has(vm.active_host) || unreachable.some((u) => u.startsWith(`${vm.active_host}:`))) {
      await alert(`cannot check where ${vm.config.address} of ${vm.vm_id} is active: ${unreachable.join('; ')}`);
    }

    try {
      const lease = await this.d.leases.get(vm.config);
      if (!lease || lease.active_host !== vm.active_host || lease.vm_id !== vm.vm_id) {
        const was = lease ? `says ${lease.active_host}` : 'is missing';
        await this.d.leases.record(vm.config, vm.active_host, this.d.shadowHosts(vm.vm_id));
        fixed++;
        await this.d.events.append({
          kind: 'EVENT_KIND_RECONCILED',
          host_id: vm.active_host,
          vm_id: vm.vm_id,
          message: `lease record of ${vm.config.address} (${this.d.leases.name}) ${was}; set to ${vm.active_host}`,
          attributes: { address: vm.config.address, backend: this.d.leases.name },
        });
      }
    } catch (err) {
      await alert(`lease record of ${vm.config.address} (${this.d.leases.name}) cannot be checked: ${errorMessage(err)}`);
    }
    // A deferred check concluded nothing: a standing alert stays remembered (not audited again).
    if (!alerted && !deferred) this.lastAlert.delete(vm.vm_id);
    return { fixed, alerts, deferred };
  }
}

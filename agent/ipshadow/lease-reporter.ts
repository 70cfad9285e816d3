// Reports the IP configs of VMs active on this host to the coordinator: every change shortly after it, and
// all of them again every interval (so a coordinator restart or a lost report heals). Failed reports
// are retried; only the newest config per VM is kept while waiting.
import { errorMessage } from '../../shared/errors';
import type { KvStore } from '../../shared/kv-store';
import { sameConfig, type VmIpConfig } from '../../shared/vm-ip-config';

const PREFIX = 'ipshadow/reported/';
export const RETRY_DELAY_MS = 1000;
/**
 * A change is reported this long after it: changes in quick succession (a burst of sniffed
 * renewals) go in one report, and the report of a switchover's activation (the coordinator has
 * already recorded the lease) stays out of the guest's first moments on its new host, where it
 * took 11 ms of the agent's CPU in the lab.
 */
export const CHANGE_REPORT_DELAY_MS = 200;

/** The coordinator side of a report (ShadowService.ReportLeaseChanges in production). */
export interface LeaseReportPort {
  report(configs: VmIpConfig[]): Promise<{ refused: string[] }>;
}

export class LeaseReporter {
  private readonly latest = new Map<string, VmIpConfig>();
  private readonly pending = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private readonly fullTimer: NodeJS.Timeout;
  private flushing = false;
  private closed = false;
  reports = 0;
  failures = 0;
  lastError = '';
  lastRefused: string[] = [];

  private constructor(
    private readonly port: LeaseReportPort,
    private readonly store: KvStore,
    fullIntervalMs: number,
    private readonly onError: (message: string) => void,
  ) {
    this.fullTimer = setInterval(() => this.reportAll(), fullIntervalMs);
    this.fullTimer.unref();
  }

  static async open(port: LeaseReportPort, store: KvStore, fullIntervalMs: number, onError: (m: string) => void): Promise<LeaseReporter> {
    const r = new LeaseReporter(port, store, fullIntervalMs, onError);
    for (const { value } of await store.list<VmIpConfig>(PREFIX)) r.latest.set(value.vm_id, value);
    r.reportAll();
    return r;
  }

  /** A VM active here has (possibly) a new config; reported when it differs from the last one. */
  async changed(config: VmIpConfig): Promise<void> {
    const held = this.latest.get(config.vm_id);
    if (held && sameConfig(held, config)) return;
    this.latest.set(config.vm_id, config);
    await this.store.put(PREFIX + config.vm_id, config);
    this.pending.add(config.vm_id);
    this.schedule(CHANGE_REPORT_DELAY_MS);
  }

  /** The VM is no longer active here: stop reporting it. */
  async forget(vmId: string): Promise<void> {
    this.latest.delete(vmId);
    this.pending.delete(vmId);
    await this.store.del(PREFIX + vmId);
  }

  get(vmId: string): VmIpConfig | undefined {
    return this.latest.get(vmId);
  }

  reportAll(): void {
    for (const id of this.latest.keys()) this.pending.add(id);
    if (this.pending.size > 0) this.schedule(0);
  }

  private schedule(delayMs: number): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, delayMs);
    this.timer.unref();
  }

  private async flush(): Promise<void> {
    if (this.flushing || this.pending.size === 0) return;
    this.flushing = true;
    const ids = [...this.pending];
    this.pending.clear();
    let failed = false;
    const configs = ids.map((id) => this.latest.get(id)).filter((c): c is VmIpConfig => c !== undefined);
    try {
      const res = await this.port.report(configs);
      this.reports++;
      this.lastRefused = res.refused;
    } catch (err) {
      failed = true;
      this.failures++;
      this.lastError = errorMessage(err);
      this.onError(`lease report failed: ${this.lastError}`);
      for (const id of ids) if (this.latest.has(id)) this.pending.add(id);
    } finally {
      this.flushing = false;
    }
    if (this.pending.size > 0) this.schedule(failed ? RETRY_DELAY_MS : 0);
  }

  close(): void {
    this.closed = true;
    clearInterval(this.fullTimer);
    if (this.timer) clearTimeout(this.timer);
  }
}

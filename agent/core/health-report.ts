// Decides whether the agent is healthy from its parts, and says why not.
import type { CapabilityStatus } from '../os/capability-probe';
import type { LinkStatus } from './coordinator-link';
import type { ShadowHealthView, VmHealthView } from './host-view';

/** Facilities without which the agent cannot do its job on a hypervisor host. */
export const REQUIRED_CAPABILITIES = ['libpcap', 'netlink'] as const;
/** Certificates closer than this to expiry make the agent unhealthy, so renewal is not missed. */
export const CERT_WARNING_DAYS = 14;
const DAY_MS = 86_400_000;

export interface HealthInputs {
  hostId: string;
  version: string;
  startedAtMs: number;
  nowMs: number;
  coordinatorEndpoint: string;
  link: LinkStatus;
  store: { path: string; ok: boolean; error: string };
  certificate: { identity: string; notAfterMs: number };
  capabilities: CapabilityStatus[];
  lastErrors: string[];
  /** Problems reported by capability modules. */
  moduleProblems?: string[];
  /** VMs running here and shadows held here (agent/core/host-view.ts). */
  vms?: VmHealthView[];
  shadows?: ShadowHealthView[];
}

export function buildHealthReport(h: HealthInputs) {
  const problems: string[] = [];
  if (h.link.state !== 'COORDINATOR_LINK_STATE_CONNECTED') {
    problems.push(`not connected to coordinator ${h.coordinatorEndpoint}${h.link.lastError ? `: ${h.link.lastError}` : ''}`);
  }
  if (!h.store.ok) problems.push(`store ${h.store.path}: ${h.store.error}`);
  const daysLeft = Math.floor((h.certificate.notAfterMs - h.nowMs) / DAY_MS);
  if (daysLeft < 0) problems.push(`certificate expired ${-daysLeft} days ago`);
  else if (daysLeft < CERT_WARNING_DAYS) problems.push(`certificate expires in ${daysLeft} days`);
  for (const name of REQUIRED_CAPABILITIES) {
    const c = h.capabilities.find((x) => x.name === name);
    if (!c?.available) problems.push(`${name} unavailable${c ? `: ${c.detail}` : ''}`);
  }
  problems.push(...(h.moduleProblems ?? []));
  return {
    healthy: problems.length === 0,
    host_id: h.hostId,
    version: h.version,
    uptime_ms: String(h.nowMs - h.startedAtMs),
    coordinator: {
      endpoint: h.coordinatorEndpoint,
      state: h.link.state,
      connected_since_unix_ms: String(h.link.connectedSinceMs),
      last_heartbeat_unix_ms: String(h.link.lastHeartbeatMs),
      last_error: h.link.lastError,
      attempts: h.link.attempts,
    },
    store: h.store,
    certificate: { identity: h.certificate.identity, not_after_unix_ms: String(h.certificate.notAfterMs), days_left: daysLeft },
    capabilities: h.capabilities,
    last_errors: h.lastErrors,
    problems,
    vms: h.vms ?? [],
    shadows: h.shadows ?? [],
  };
}

export type HealthReport = ReturnType<typeof buildHealthReport>;

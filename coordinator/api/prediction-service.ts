// gRPC handlers of umbra.coordinator.v1.PredictionService: agents report telemetry (own host only);
// operators read predictions and ranks and set the policy. Decode, call the hub, encode.
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { InvalidArgumentError, PermissionDeniedError } from '../../shared/errors';
import { HandlerKit } from '../../shared/grpc-handlers';
import type { ServiceBinding } from '../../shared/grpc-server';
import type { HostRecord } from '../../shared/host-types';
import { requireHostId, requireString } from '../../shared/validate';
import type { Forecast } from '../predict/time-series';
import type { HostPrediction, PredictionHub, VmPrediction } from '../predict/prediction-hub';
import { type PredictionPolicy, policyFromWire, policyToWire } from '../predict/prediction-policy';
import { parseTelemetryReport } from '../predict/telemetry-report';
import type { RankResult, ScoreWeights } from '../rank/types';

export const PREDICTION_SERVICE = 'umbra.coordinator.v1.PredictionService';
const MAX_RANK_LIMIT = 10_000;

type Msg = Record<string, unknown>;

export interface PredictionServiceDeps {
  hub: PredictionHub;
  hosts: () => HostRecord[];
  /** Persists and applies a new policy. */
  setPolicy: (p: PredictionPolicy) => Promise<void>;
  forecasterName: () => string;
  logger: Logger;
}

function forecastToWire(f: Forecast | undefined) {
  if (!f) return null;
  return { point: f.point, point_lower: f.pointLower, point_upper: f.pointUpper, peak: f.peak, peak_lower: f.peakLower, peak_upper: f.peakUpper, exceed_probability: f.exceedProbability ?? -1 };
}

export function vmPredictionToWire(p: VmPrediction, horizonMinutes: number) {
  const a = p.advice;
  return {
    vm_id: p.vmId,
    host_id: p.hostId,
    migration_probability: a.probability,
    decision: a.decision,
    reasons: a.reasons,
    windows: a.windows.map((w) => ({ start_unix_ms: String(w.startMs), end_unix_ms: String(w.endMs) })),
    cpu: forecastToWire(p.forecast?.cpu),
    memory: forecastToWire(p.forecast?.memory),
    samples: p.forecast?.samples ?? 0,
    anomaly_score: p.anomalyScore,
    net_benefit: Number.isFinite(a.netBenefit) ? a.netBenefit : -1,
    priority: a.priority,
    destination_host: a.destinationHostId ?? '',
    horizon_minutes: horizonMinutes,
  };
}

export function hostPredictionToWire(h: HostPrediction) {
  const s = h.saturation;
  const finite = (x: number) => (Number.isFinite(x) ? x : -1);
  return {
    host_id: h.hostId,
    saturation_probability: s.probability,
    cpu_saturation_probability: s.cpuProbability,
    memory_saturation_probability: s.memoryProbability,
    cpu_peak_fraction: finite(s.cpuPeakFraction),
    memory_peak_fraction: finite(s.memoryPeakFraction),
    failure_risk: h.failure.risk,
    failure_reasons: h.failure.reasons,
    vm_ids: h.vmIds,
    sampler_cost: h.cost ? { samples: h.cost.samples, mean_cpu_ms: h.cost.meanCpuMs, max_cpu_ms: h.cost.maxCpuMs } : null,
    last_report_unix_ms: String(h.lastReportMs),
  };
}

export function rankResultToWire(r: RankResult, sourceHost: string) {
  return {
    vm_id: r.vmId,
    source_host: sourceHost,
    ranked: r.ranked.map((d) => ({
      host_id: d.hostId,
      rank: d.rank,
      score: d.score,
      // Components write their sentence on demand (a getter): read each field, do not spread.
      breakdown: (Object.keys(d.breakdown) as Array<keyof ScoreWeights>).map((name) => {
        const c = d.breakdown[name];
        return { name, value: c.value, weight: c.weight, contribution: c.contribution, reason: c.reason };
      }),
      predicted_migration_seconds: d.predictedMigrationSeconds,
      reasons: d.reasons,
    })),
    rejected: r.rejected.map((x) => ({ host_id: x.hostId, reason: x.reason, detail: x.detail })),
    rejected_counts: { ...r.rejectedCounts },
    eligible: r.eligible,
  };
}

const requireVmId = (v: unknown) => requireString('vm_id', v, { maxLength: 256 });

export function predictionService(deps: PredictionServiceDeps): ServiceBinding {
  const kit = new HandlerKit(deps.logger);
  const readers = ['operator', 'coordinator'] as const;
  const hub = deps.hub;

  const handlers: grpc.UntypedServiceImplementation = {
    ReportTelemetry: kit.unary<Msg, Msg>('ReportTelemetry', ['agent'], async (req, ctx) => {
      const hostId = requireHostId('host_id', req.host_id);
      if (hostId !== ctx.peer.name) throw new PermissionDeniedError(`agent/${ctx.peer.name} may not report for host '${hostId}'`);
      return hub.ingest(parseTelemetryReport(hostId, req));
    }),
    GetPredictions: kit.unary<Msg, Msg>('GetPredictions', readers, async (req) => {
      const vmId = requireVmId(req.vm_id);
      const hosts = deps.hosts();
      const p = hub.vmPrediction(vmId, hosts);
      const host = hosts.find((h) => h.facts.host_id === p.hostId);
      return { vm: vmPredictionToWire(p, hub.engine.horizonMinutes), host: host ? hostPredictionToWire(hub.hostPrediction(host)) : null };
    }),
    ListPredictions: kit.unary<Msg, Msg>('ListPredictions', readers, async () => {
      const hosts = deps.hosts();
      return {
        vms: hub.knownVms().map((id) => vmPredictionToWire(hub.vmPrediction(id, hosts), hub.engine.horizonMinutes)),
        hosts: hosts.map((h) => hostPredictionToWire(hub.hostPrediction(h))),
        horizon_minutes: hub.engine.horizonMinutes,
        forecaster: deps.forecasterName(),
      };
    }),
    RankDestinations: kit.unary<Msg, Msg>('RankDestinations', readers, async (req) => {
      const vmId = requireVmId(req.vm_id);
      const limit = typeof req.limit === 'number' ? req.limit : 0;
      if (!Number.isInteger(limit) || limit < 0 || limit > MAX_RANK_LIMIT) throw new InvalidArgumentError('limit', `must be 0..${MAX_RANK_LIMIT}`);
      const r = hub.rank(vmId, deps.hosts(), { limit, explainRejected: req.explain_rejected === true });
      return rankResultToWire(r, hub.vmHost(vmId) ?? '');
    }),
    GetPolicy: kit.unary<Msg, Msg>('GetPolicy', readers, async () => ({ policy: policyToWire(hub.policy) })),
    SetPolicy: kit.unary<Msg, Msg>('SetPolicy', ['operator'], async (req) => {
      const p = policyFromWire(req.policy);
      await deps.setPolicy(p);
      return { policy: policyToWire(hub.policy) };
    }),
  };
  return { name: PREDICTION_SERVICE, handlers };
}

// Host failure risk from health-signal trends: EDAC corrected/uncorrected memory errors, thermal
// readings, SMART status. Each signal gives a partial risk and a sentence; they combine as
// independent hazards. Pure logic.

export interface HealthSnapshot {
  timeMs: number;
  /** Absent when the host exposes no EDAC (the sampler reports absence, not zero). */
  edacCorrected?: number;
  edacUncorrected?: number;
  maxTemperatureC?: number;
  smartHealthy?: boolean;
  smartReallocatedSectors?: number;
  smartPendingSectors?: number;
}

/** Tunables. */
export const CORRECTED_ERRORS_PER_HOUR_WARN = 10;
export const TEMPERATURE_WARN_C = 85;
export const TEMPERATURE_CRITICAL_C = 100;
export const TEMPERATURE_RISE_WARN_C_PER_HOUR = 10;

export interface FailureRisk {
  risk: number;
  reasons: string[];
}

function perHour(delta: number, ms: number): number {
  return ms > 0 ? (delta * 3_600_000) / ms : 0;
}

/** Risk of failure within the horizon, from snapshots in time order (older first). */
export function hostFailureRisk(snapshots: readonly HealthSnapshot[]): FailureRisk {
  const parts: Array<[number, string]> = [];
  if (snapshots.length === 0) return { risk: 0, reasons: ['no health signals yet'] };
  const first = snapshots[0];
  const last = snapshots[snapshots.length - 1];
  const spanMs = last.timeMs - first.timeMs;
  if (last.edacUncorrected !== undefined && first.edacUncorrected !== undefined && last.edacUncorrected > first.edacUncorrected) {
    parts.push([0.6, `${last.edacUncorrected - first.edacUncorrected} new uncorrected memory errors (EDAC)`]);
  }
  if (last.edacCorrected !== undefined && first.edacCorrected !== undefined) {
    const rate = perHour(last.edacCorrected - first.edacCorrected, spanMs);
    if (rate > 0) {
      const r = Math.min(0.5, (0.2 * rate) / CORRECTED_ERRORS_PER_HOUR_WARN);
      parts.push([r, `corrected memory errors rising: ${rate.toFixed(1)}/h (EDAC)`]);
    }
  }
  if (last.maxTemperatureC !== undefined) {
    const t = last.maxTemperatureC;
    if (t >= TEMPERATURE_CRITICAL_C) parts.push([0.5, `temperature ${t.toFixed(0)} C at or above critical ${TEMPERATURE_CRITICAL_C} C`]);
    else if (t >= TEMPERATURE_WARN_C) parts.push([0.15, `temperature ${t.toFixed(0)} C above ${TEMPERATURE_WARN_C} C`]);
    if (first.maxTemperatureC !== undefined && spanMs > 0) {
      const rise = perHour(t - first.maxTemperatureC, spanMs);
      if (rise >= TEMPERATURE_RISE_WARN_C_PER_HOUR) parts.push([0.1, `temperature rising ${rise.toFixed(0)} C/h`]);
    }
  }
  if (last.smartHealthy === false) parts.push([0.5, 'SMART overall health check failed']);
  const grown = (a?: number, b?: number) => (a !== undefined && b !== undefined ? b - a : 0);
  const realloc = grown(first.smartReallocatedSectors, last.smartReallocatedSectors);
  const pending = grown(first.smartPendingSectors, last.smartPendingSectors);
  if (realloc > 0 || pending > 0) parts.push([Math.min(0.4, 0.05 * (realloc + pending)), `disk sectors failing: +${realloc} reallocated, +${pending} pending (SMART)`]);
  const risk = 1 - parts.reduce((acc, [r]) => acc * (1 - r), 1);
  return { risk, reasons: parts.sort((a, b) => b[0] - a[0]).map(([, s]) => s) };
}

// Hosts compiled once into flat arrays (interned flags as bitsets, group membership masks) so that
// checking one VM against a thousand hosts is a tight loop. Pure logic.

import { HostView } from './types';

/** Interns strings to small integers. */
export class Interner {
  private readonly ids = new Map<string, number>();
  id(s: string): number {
    let v = this.ids.get(s);
    if (v === undefined) {
      v = this.ids.size;
      this.ids.set(s, v);
    }
    return v;
  }
  lookup(s: string): number | undefined {
    return this.ids.get(s);
  }
  get size(): number {
    return this.ids.size;
  }
}

export interface HostTable {
  hosts: readonly HostView[];
  count: number;
  up: Uint8Array;
  cpuCap: Float64Array;
  cpuUsed: Float64Array;
  memCap: Float64Array;
  memUsed: Float64Array;
  bandwidth: Float64Array;
  /** Index into bandwidthClasses: hosts share a few link speeds, so migration cost is computed per class. */
  bandwidthClass: Int32Array;
  bandwidthClasses: number[];
  failureRisk: Float64Array;
  cpuModel: Int32Array;
  cpuFamily: Int32Array;
  failureDomain: Int32Array;
  /** Flag bitsets, `flagWords` 32-bit words per host. */
  flags: Uint32Array;
  flagWords: number;
  flagIds: Interner;
  modelIds: Interner;
  familyIds: Interner;
  domainIds: Interner;
  /** Free GPU devices per host by model (usually empty). */
  gpus: ReadonlyArray<ReadonlyMap<string, number>>;
  /** group label -> hosts (by index) holding a member. */
  groupHosts: Map<string, Uint8Array>;
  indexOf: Map<string, number>;
}

export function compileHosts(hosts: readonly HostView[]): HostTable {
  const n = hosts.length;
  const flagIds = new Interner();
  for (const h of hosts) for (const f of h.cpuFlags) flagIds.id(f);
  // Room for flags only VMs require (interned later): they never match a host bit.
  const flagWords = Math.max(1, Math.ceil(flagIds.size / 32));
  const t: HostTable = {
    hosts,
    count: n,
    up: new Uint8Array(n),
    cpuCap: new Float64Array(n),
    cpuUsed: new Float64Array(n),
    memCap: new Float64Array(n),
    memUsed: new Float64Array(n),
    bandwidth: new Float64Array(n),
    bandwidthClass: new Int32Array(n),
    bandwidthClasses: [],
    failureRisk: new Float64Array(n),
    cpuModel: new Int32Array(n),
    cpuFamily: new Int32Array(n),
    failureDomain: new Int32Array(n),
    flags: new Uint32Array(n * flagWords),
    flagWords,
    flagIds,
    modelIds: new Interner(),
    familyIds: new Interner(),
    domainIds: new Interner(),
    gpus: hosts.map((h) => countModels(h.freeGpuModels ?? [])),
    groupHosts: new Map(),
    indexOf: new Map(),
  };
  hosts.forEach((h, i) => {
    t.indexOf.set(h.id, i);
    t.up[i] = h.up ? 1 : 0;
    t.cpuCap[i] = h.cpuCapacityCores;
    t.cpuUsed[i] = h.cpuPeakCores;
    t.memCap[i] = h.memoryCapacityBytes;
    t.memUsed[i] = h.memoryPeakBytes;
    t.bandwidth[i] = h.linkBandwidthBytesPerSec;
    let cls = t.bandwidthClasses.indexOf(h.linkBandwidthBytesPerSec);
    if (cls < 0) cls = t.bandwidthClasses.push(h.linkBandwidthBytesPerSec) - 1;
    t.bandwidthClass[i] = cls;
    t.failureRisk[i] = h.failureRisk ?? 0;
    t.cpuModel[i] = t.modelIds.id(h.cpuModel);
    t.cpuFamily[i] = h.cpuFamily === undefined ? -1 : t.familyIds.id(h.cpuFamily);
    t.failureDomain[i] = t.domainIds.id(h.failureDomain);
    for (const f of h.cpuFlags) {
      const b = flagIds.id(f);
      t.flags[i * flagWords + (b >>> 5)] |= 1 << (b & 31);
    }
    for (const g of h.groups ?? []) {
      let mask = t.groupHosts.get(g);
      if (!mask) {
        mask = new Uint8Array(n);
        t.groupHosts.set(g, mask);
      }
      mask[i] = 1;
    }
  });
  return t;
}

/** A VM's required flags as a bitset over the table's flags; `unknown` counts flags no host has. */
export function vmFlagMask(t: HostTable, flags: readonly string[]): { mask: Uint32Array; unknown: string[] } {
  const mask = new Uint32Array(t.flagWords);
  const unknown: string[] = [];
  for (const f of flags) {
    const b = t.flagIds.lookup(f);
    if (b === undefined) unknown.push(f);
    else mask[b >>> 5] |= 1 << (b & 31);
  }
  return { mask, unknown };
}

/** Flags the VM needs that host i lacks. */
export function missingFlags(t: HostTable, i: number, flags: readonly string[]): string[] {
  const out: string[] = [];
  for (const f of flags) {
    const b = t.flagIds.lookup(f);
    if (b === undefined || (t.flags[i * t.flagWords + (b >>> 5)] & (1 << (b & 31))) === 0) out.push(f);
  }
  return out;
}

/** Devices per model: a VM holding two A100s needs a host with two free. */
export function countModels(models: readonly string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const x of models) m.set(x, (m.get(x) ?? 0) + 1);
  return m;
}

/** The VM's GPU models the host cannot supply, e.g. "A100 (2 needed, 1 free)". */
export function missingGpus(needed: ReadonlyMap<string, number>, free: ReadonlyMap<string, number>): string[] {
  const out: string[] = [];
  for (const [model, n] of needed) {
    const have = free.get(model) ?? 0;
    if (have < n) out.push(n === 1 ? model : `${model} (${n} needed, ${have} free)`);
  }
  return out;
}

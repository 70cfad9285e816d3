// Parses the one-line answer umbra-guest sends to a "stat" probe. Pure.

export interface GuestStat {
  /** Ticks of 100 ms since the workload started; keeps counting across a switchover. */
  counter: number;
  /** Random per boot: a different value means the guest rebooted. */
  boot: string;
  fillMb: number;
  fillDone: boolean;
  memwriteMb: number;
  memwritePasses: number;
}

export function parseGuestStat(line: string): GuestStat | undefined {
  const fields = new Map<string, string>();
  for (const tok of line.trim().split(/\s+/)) {
    const eq = tok.indexOf('=');
    if (eq > 0) fields.set(tok.slice(0, eq), tok.slice(eq + 1));
  }
  const num = (k: string): number | undefined => {
    const v = fields.get(k);
    return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
  };
  const counter = num('counter');
  const boot = fields.get('boot');
  if (counter === undefined || !boot || !/^[0-9a-f]{16}$/.test(boot)) return undefined;
  return {
    counter,
    boot,
    fillMb: num('fill_mb') ?? 0,
    fillDone: fields.get('fill_done') === '1',
    memwriteMb: num('memwrite_mb') ?? 0,
    memwritePasses: num('memwrite_passes') ?? 0,
  };
}

/** The address the guest printed on its console when its DHCP lease was bound. */
export function guestAddressFromSerial(serialLog: string): string | undefined {
  const m = /umbra-dhcp-bound ip=(\d+\.\d+\.\d+\.\d+)/.exec(serialLog);
  return m?.[1];
}

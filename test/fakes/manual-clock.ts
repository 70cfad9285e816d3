// A clock tests move by hand.
export class ManualClock {
  constructor(public nowMs = 1_700_000_000_000) {}
  now = (): number => this.nowMs;
  advance(ms: number): void {
    this.nowMs += ms;
  }
}

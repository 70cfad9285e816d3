// A bounded list of the agent's latest errors for the health screen, newest first, with
// repeats folded so one flapping failure cannot push out everything else.
export const RECENT_ERRORS_KEPT = 10;

export class RecentErrors {
  private readonly items: Array<{ atMs: number; message: string; count: number }> = [];

  constructor(private readonly now: () => number = Date.now) {}

  add(message: string): void {
    const existing = this.items.findIndex((i) => i.message === message);
    if (existing >= 0) {
      const [item] = this.items.splice(existing, 1);
      item.count++;
      item.atMs = this.now();
      this.items.unshift(item);
      return;
    }
    this.items.unshift({ atMs: this.now(), message, count: 1 });
    if (this.items.length > RECENT_ERRORS_KEPT) this.items.pop();
  }

  lines(): string[] {
    return this.items.map((i) => `${new Date(i.atMs).toISOString()} ${i.message}${i.count > 1 ? ` (x${i.count})` : ''}`);
  }
}

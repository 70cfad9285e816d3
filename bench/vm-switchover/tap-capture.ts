// Diagnostic for the vm-switchover bench (--capture): tcpdump on a destination QEMU's tap while
// the guest resumes there, summarised against the resume instant: QEMU's self-announcements (RARP)
// going out, the client's first probe handed to the guest, and the guest's first answer. Tells
// whether the first answer waits for the network (announce, bridge learning) or for the guest.
import type { ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { NetnsLab } from '../../test/helpers/netns';
import { waitFor } from '../../test/helpers/netns';

const execFileP = promisify(execFile);

export interface TapCaptureSummary {
  /** Milliseconds after the resume (negative: before it). */
  rarpMs: number[];
  firstProbeToGuestMs?: number;
  firstAnswerFromGuestMs?: number;
  probesToGuestBeforeFirstAnswer: number;
  /** Probes the bridge put on this tap while the guest was still paused (queued for it). */
  probesQueuedBeforeResume: number;
}

export class TapCapture {
  private constructor(
    private readonly lab: NetnsLab,
    private readonly child: ChildProcess,
    private readonly file: string,
  ) {}

  static async start(lab: NetnsLab, ns: string, tap: string, file: string): Promise<TapCapture> {
    const child = lab.spawn(ns, 'tcpdump', ['-i', tap, '-n', '-U', '--immediate-mode', '-Z', 'root', '-s', '128', '--time-stamp-precision=micro', '-w', file]);
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    await waitFor('tcpdump listening', async () => err.includes('listening on'), 5000, 20);
    return new TapCapture(lab, child, file);
  }

  /** Stops the capture and reads it; `resumeAtUnixMs` is the wall-clock instant the guest resumed. */
  async summary(resumeAtUnixMs: number, port: number): Promise<TapCaptureSummary> {
    await this.lab.stop(this.child, 2000);
    const { stdout } = await execFileP('tcpdump', ['-r', this.file, '-n', '-tt', '-e', '--time-stamp-precision=micro'], { maxBuffer: 64 << 20 });
    const out: TapCaptureSummary = { rarpMs: [], probesToGuestBeforeFirstAnswer: 0, probesQueuedBeforeResume: 0 };
    // tcpdump decodes port 7007 as AFS Rx ("[|rx]"), so the lines are matched on addresses only.
    const toGuest = new RegExp(`> [0-9.]+\\.${port}: `);
    const fromGuest = new RegExp(`\\.${port} > [0-9.]+: `);
    for (const line of stdout.split('\n')) {
      const t = Number(line.split(' ', 1)[0]) * 1000 - resumeAtUnixMs;
      if (!Number.isFinite(t)) continue;
      if (/Reverse Request|RARP|ethertype Reverse/i.test(line)) out.rarpMs.push(t);
      else if (toGuest.test(line) && t < 0) out.probesQueuedBeforeResume++;
      else if (toGuest.test(line)) {
        out.firstProbeToGuestMs ??= t;
        if (out.firstAnswerFromGuestMs === undefined) out.probesToGuestBeforeFirstAnswer++;
      } else if (fromGuest.test(line) && t >= 0) out.firstAnswerFromGuestMs ??= t;
    }
    return out;
  }
}

// Gap detection (pure): frames of one stream must arrive as epoch e frames 0..k (last), then e+1 from 0.
import { FrameError } from './frame-errors';

export interface FramePosition {
  epoch: number;
  index: number;
  last: boolean;
}

export class FrameSequence {
  /** Highest epoch whose last frame was accepted. */
  private completedEpoch: number;
  private nextIndex = 0;
  private openEpoch: number | undefined;

  constructor(completedEpoch: number) {
    this.completedEpoch = completedEpoch;
  }

  get lastCompletedEpoch(): number {
    return this.completedEpoch;
  }

  /** The position the next frame must have. */
  expected(): { epoch: number; index: number } {
    return this.openEpoch === undefined ? { epoch: this.completedEpoch + 1, index: 0 } : { epoch: this.openEpoch, index: this.nextIndex };
  }

  /**
   * Throws GAP unless `f` is exactly the expected frame. The source may skip epochs (a shadow that
   * was not sent a round gets its pages in a later one), so a new epoch may be any higher number.
   */
  check(f: FramePosition): void {
    if (this.openEpoch === undefined) {
      if (f.epoch <= this.completedEpoch || f.index !== 0) {
        throw new FrameError('GAP', `got epoch ${f.epoch} frame ${f.index}, expected a new epoch > ${this.completedEpoch} from frame 0`);
      }
    } else if (f.epoch !== this.openEpoch || f.index !== this.nextIndex) {
      throw new FrameError('GAP', `got epoch ${f.epoch} frame ${f.index}, expected epoch ${this.openEpoch} frame ${this.nextIndex}`);
    }
  }

  /** Records `f` as applied (call after check() and after the pages are written). */
  accept(f: FramePosition): void {
    this.check(f);
    if (f.last) {
      this.completedEpoch = f.epoch;
      this.openEpoch = undefined;
      this.nextIndex = 0;
    } else {
      this.openEpoch = f.epoch;
      this.nextIndex = f.index + 1;
    }
  }
}

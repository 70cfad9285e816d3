// When a replication source tries to compress a frame. Guest memory written with random, encrypted
// or already compressed data does not shrink: compressing it anyway cost the source a brotli pass
// and the shadow a decompression per frame, and each pass allocated its output afresh (a heavy
// 1 GiB guest made both agents collect garbage several times a second). After a frame that did not
// shrink enough, the next ones go raw for a while (1, 2, 4 ... up to `maxSkip` frames), then one is
// tried again; a frame that shrinks ends the back-off.

/** A compressed payload must save at least this fraction of the raw bytes to be sent compressed. */
export const MIN_COMPRESSION_SAVING = 1 / 16;
export const DEFAULT_MAX_SKIPPED_FRAMES = 64;

export class CompressionBackoff {
  private skipLeft = 0;
  private penalty = 0;

  constructor(private readonly maxSkip = DEFAULT_MAX_SKIPPED_FRAMES) {}

  /** Whether the next frame is worth a compression attempt (a false answer uses up one skipped frame). */
  shouldTry(): boolean {
    if (this.skipLeft === 0) return true;
    this.skipLeft--;
    return false;
  }

  /** The outcome of an attempt; returns whether the compressed form is the one to send. */
  record(rawBytes: number, packedBytes: number): boolean {
    const worth = packedBytes <= rawBytes * (1 - MIN_COMPRESSION_SAVING);
    if (worth) {
      this.penalty = 0;
      this.skipLeft = 0;
    } else {
      this.penalty = this.penalty === 0 ? 1 : Math.min(this.maxSkip, this.penalty * 2);
      this.skipLeft = this.penalty;
    }
    return worth;
  }

  /** Frames still to go raw before the next attempt (for tests and status). */
  get skipping(): number {
    return this.skipLeft;
  }
}

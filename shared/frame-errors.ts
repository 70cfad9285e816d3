// Typed errors of the memory-delta frame codec: one code per way a frame can be refused.
import { UmbraError } from './errors';

export type FrameErrorCode =
  | 'TRUNCATED' // shorter than its header or its declared body length
  | 'BAD_MAGIC' // not a frame at all
  | 'UNSUPPORTED_VERSION' // a format version this build cannot read
  | 'TOO_LARGE' // declared or actual size above the cap (checked before decoding)
  | 'CHECKSUM_MISMATCH' // body corrupted in transit or on disk
  | 'MALFORMED' // checksum fine but fields are missing, inconsistent or out of range
  | 'WRONG_STREAM' // frame of another VM or source generation
  | 'GAP'; // sequence does not follow the last accepted frame

export class FrameError extends UmbraError {
  readonly code: FrameErrorCode;
  constructor(code: FrameErrorCode, detail: string) {
    super(code === 'TOO_LARGE' ? 'RESOURCE_EXHAUSTED' : 'INVALID_ARGUMENT', `frame refused (${code}): ${detail}`);
    this.name = 'FrameError';
    this.code = code;
  }
}

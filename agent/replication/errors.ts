// Errors of memory replication (sender and shadow side).
import { UmbraError } from '../../shared/errors';

/** The shadow's disk is full: reported on the shadow, never fatal to the source. */
export class ShadowDiskFullError extends UmbraError {
  constructor(vmId: string, path: string, options?: { cause?: unknown }) {
    super('RESOURCE_EXHAUSTED', `shadow image of ${vmId} at ${path}: disk full`, options);
    this.name = 'ShadowDiskFullError';
  }
}

/** Writing or syncing the shadow image failed for another reason (EIO, EROFS...). */
export class ShadowImageError extends UmbraError {
  constructor(vmId: string, path: string, detail: string, options?: { cause?: unknown }) {
    super('INTERNAL', `shadow image of ${vmId} at ${path}: ${detail}`, options);
    this.name = 'ShadowImageError';
  }
}

/** flush() could not get every shadow to acknowledge the final epoch in time. */
export class FlushIncompleteError extends UmbraError {
  readonly lagging: string[];
  constructor(vmId: string, epoch: number, lagging: string[]) {
    super('UNAVAILABLE', `flush of ${vmId}: epoch ${epoch} not acknowledged by ${lagging.join(', ')}`);
    this.name = 'FlushIncompleteError';
    this.lagging = lagging;
  }
}

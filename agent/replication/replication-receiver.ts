// Shadow side of replication: one session per VM stream. Verifies each frame (codec checks, then
// stream identity and sequence), writes it into the shadow image and, when an epoch is complete,
// makes it durable and persists the epoch before acknowledging it (a flush's epoch: acknowledged
// once applied, durable right after). Durability runs beside the frames that follow.
import type { Logger } from 'pino';
import { errorMessage } from '../../shared/errors';
import { FrameCodec, type Frame } from '../../shared/frame-codec';
import { FrameError, type FrameErrorCode } from '../../shared/frame-errors';
import { FrameSequence } from '../../shared/frame-sequence';
import { KeyedMutex } from '../../shared/keyed-mutex';
import type { KvStore } from '../../shared/kv-store';
import { createLogger } from '../../shared/log';
import { native } from '../memory/native-binding';
import { ShadowDiskFullError } from './errors';
import type { GuestMemory } from '../memory/guest-memory';
import { digestBlockBytes, type ImageDigest } from './image-digest';
import { existingImageSize, ShadowImage, shadowImagePath } from './shadow-image';
import { ShadowStateStore } from './shadow-state-store';

export interface OpenReplication {
  vmId: string;
  generation: string;
  imageSizeBytes: number;
  pageSizeBytes: number;
  sourceHostId?: string;
  /**
   * The source declares this shadow's image invalid (a guest may have run on it): the persisted
   * epoch is forgotten and the stream starts from 0, so every page is sent again.
   */
  discardImage?: boolean;
}

export type ShadowErrorCode = 'DISK_FULL' | 'IO' | 'REFUSED';

export type ReceiverReply =
  /** `digest`: of the image this shadow already holds, with a full resend (the source sends what differs). */
  | { kind: 'ready'; resumeFromEpoch: number; fullResend: boolean; reason: string; digest?: ImageDigest }
  | { kind: 'ack'; epoch: number }
  /** Resend from this frame on; frames after it were dropped. */
  | { kind: 'reject'; epoch: number; index: number; code: FrameErrorCode; detail: string }
  | { kind: 'error'; code: ShadowErrorCode; detail: string };

export interface ShadowStatus {
  vmId: string;
  generation: string;
  epoch: number;
  imagePath: string;
  connected: boolean;
  framesApplied: number;
  framesRejected: number;
  bytesApplied: number;
  lastError?: string;
}

export interface ReplicationReceiverOptions {
  /** Where the images are (`<vm>.ram`). */
  imageDir: string;
  store: KvStore;
  maxFrameBytes?: number;
  /** fdatasync the image before persisting each epoch (default true). */
  syncEachEpoch?: boolean;
  /**
   * With a full resend, send the digest of the image already here (default true): the source then
   * sends only the blocks that differ (a VM that comes back to a host it left, a shadow of the
   * VM's previous source session).
   */
  digestOnFullResend?: boolean;
  /**
   * A local copy of the VM's RAM to start a missing image from (the paused QEMU the VM left on
   * this host when it switched over): the image is seeded from it and its digest sent, so that a
   * VM coming back to a host it left is not copied over the network in full. Closed after use.
   */
  seedFrom?: (vmId: string, sizeBytes: number) => Promise<GuestMemory | undefined>;
  /** At the first stream, tune this process's malloc to reuse freed memory (retainFreedMemory(); default true). */
  retainFreedMemory?: boolean;
  log?: Logger;
}

const MAX_IMAGE_BYTES = 2 ** 46;

/**
 * Freed memory glibc keeps for reuse in a process that receives frames. The shadow's HTTP/2
 * session reads the socket into a new 64 KiB buffer per read, freed when a GC collects it; by
 * default glibc hands the freed top of its heap back to the kernel, and the next reads fault in
 * fresh pages (measured: 170k minor faults receiving 1 GiB, 2.5x the CPU per MB of the shadow;
 * 16k with this). Process-wide and once, at the first stream opened (an agent that is nobody's
 * shadow keeps its idle footprint); the kind of values glibc's own dynamic thresholds reach after
 * large frees, made fixed so that a burst of freed read buffers is not trimmed either.
 */
export const MALLOC_TRIM_THRESHOLD_BYTES = 32 * 1024 * 1024;
export const MALLOC_MMAP_THRESHOLD_BYTES = 4 * 1024 * 1024;
let mallocTuned: boolean | undefined;

/** Applies the malloc retention above (once per process); whether it is in effect. */
export function retainFreedMemory(): boolean {
  mallocTuned ??= native.mallocRetain(MALLOC_TRIM_THRESHOLD_BYTES, MALLOC_MMAP_THRESHOLD_BYTES);
  return mallocTuned;
}

export class ReplicationReceiver {
  private readonly sessions = new Map<string, ReceiverSession>();
  private readonly opening = new KeyedMutex();
  private readonly stats = new Map<string, ShadowStatus>();
  readonly states: ShadowStateStore;
  readonly codec: FrameCodec;
  private readonly log: Logger;

  constructor(private readonly options: ReplicationReceiverOptions) {
    this.states = new ShadowStateStore(options.store);
    this.codec = new FrameCodec({ checksum: native.xxh64, maxFrameBytes: options.maxFrameBytes });
    this.log = options.log ?? createLogger('replication-receiver');
  }

  /**
   * Starts a session for a source stream; a previous session of the same VM is closed first.
   * Opens of one VM run one at a time: a digest can take seconds, and a source that reconnected
   * meanwhile must not have its newer session (and persisted epoch) overwritten by the older open.
   */
  open(req: OpenReplication): Promise<ReceiverSession> {
    return this.opening.run(req.vmId ?? '', () => this.openNow(req));
  }

  private async openNow(req: OpenReplication): Promise<ReceiverSession> {
    if (!req.vmId || !req.generation) throw new FrameError('WRONG_STREAM', 'open without vm id or generation');
    if (!(req.pageSizeBytes >= 512) || req.imageSizeBytes <= 0 || req.imageSizeBytes % req.pageSizeBytes !== 0 || req.imageSizeBytes > MAX_IMAGE_BYTES) {
      throw new FrameError('MALFORMED', `image ${req.imageSizeBytes} bytes / page ${req.pageSizeBytes} bytes`);
    }
    if (this.options.retainFreedMemory ?? true) retainFreedMemory();
    await this.sessions.get(req.vmId)?.close();
    const file = shadowImagePath(this.options.imageDir, req.vmId);
    const prior = await this.states.get(req.vmId);
    const size = existingImageSize(file);
    let resume = 0;
    let reason: string;
    if (req.discardImage) reason = 'image discarded at the source\'s request';
    else if (!prior) reason = 'no shadow image state';
    else if (prior.generation !== req.generation) reason = `source generation changed (${prior.generation} -> ${req.generation})`;
    else if (size !== req.imageSizeBytes || prior.imageSizeBytes !== req.imageSizeBytes || prior.pageSizeBytes !== req.pageSizeBytes) {
      reason = `image missing or of another size (${size ?? 'none'} bytes)`;
    } else {
      resume = prior.epoch;
      reason = `resuming from persisted epoch ${resume}`;
    }
    const image = await ShadowImage.open(this.options.imageDir, req.vmId, req.imageSizeBytes);
    const seeded = size === undefined && resume === 0 ? await this.seed(image, req) : false;
    const digest = resume === 0 ? await this.digestOf(image, req, seeded ? req.imageSizeBytes : size) : undefined;
    if (resume === 0) {
      await this.states.put({ vmId: req.vmId, generation: req.generation, epoch: 0, imageSizeBytes: req.imageSizeBytes, pageSizeBytes: req.pageSizeBytes });
    }
    const stat = this.stats.get(req.vmId) ?? {
      vmId: req.vmId,
      generation: req.generation,
      epoch: resume,
      imagePath: file,
      connected: true,
      framesApplied: 0,
      framesRejected: 0,
      bytesApplied: 0,
    };
    Object.assign(stat, { generation: req.generation, epoch: resume, connected: true });
    this.stats.set(req.vmId, stat);
    const session = new ReceiverSession(this, req, image, resume, reason, stat, this.options.syncEachEpoch ?? true, this.log, digest);
    this.sessions.set(req.vmId, session);
    this.log.info({ vmId: req.vmId, generation: req.generation, resumeFromEpoch: resume, reason, ...(digest ? { digestBlocks: digest.hashes.length, digestBlockBytes: digest.blockBytes } : {}) }, 'replication stream opened');
    return session;
  }

  /** Seeds a new image from a local copy of the VM's RAM (see seedFrom); whether it was. */
  private async seed(image: ShadowImage, req: OpenReplication): Promise<boolean> {
    if (!this.options.seedFrom || this.options.digestOnFullResend === false || req.discardImage) return false;
    let memory: GuestMemory | undefined;
    try {
      memory = await this.options.seedFrom(req.vmId, req.imageSizeBytes);
      if (!memory || memory.pageCount * memory.region.pageSizeBytes !== req.imageSizeBytes) return false;
      const t0 = performance.now();
      const pages = await image.seedFrom(memory);
      this.log.info({ vmId: req.vmId, pid: memory.region.pid, dataPages: pages, ms: Math.round(performance.now() - t0) }, 'shadow image seeded from the local copy of the VM');
      return true;
    } catch (err) {
      // A partly seeded image is harmless: without a digest every page is sent again.
      this.log.warn({ vmId: req.vmId, err: errorMessage(err) }, 'seeding the shadow image from the local copy failed');
      return false;
    } finally {
      memory?.close();
    }
  }

  /**
   * The digest of an image that was here before this stream with the stream's size (content of
   * an earlier session, e.g. the VM's RAM when it left this host), unless it would be too large to
   * send. Also for an image the source declared invalid (a guest ran on it): the digest is of what
   * the image holds now, scribbles included, so the source re-sends exactly the blocks they touched.
   */
  private async digestOf(image: ShadowImage, req: OpenReplication, sizeBefore: number | undefined): Promise<ImageDigest | undefined> {
    if (this.options.digestOnFullResend === false || sizeBefore !== req.imageSizeBytes) return undefined;
    const blockBytes = digestBlockBytes(req.imageSizeBytes);
    if (blockBytes === undefined) return undefined;
    const t0 = performance.now();
    const digest = await image.digest(blockBytes);
    this.log.info({ vmId: req.vmId, blocks: digest.hashes.length, blockBytes, ms: Math.round(performance.now() - t0) }, 'digest of the image already here');
    return digest;
  }

  /** @internal */
  detach(vmId: string, s: ReceiverSession): void {
    if (this.sessions.get(vmId) === s) {
      this.sessions.delete(vmId);
      const st = this.stats.get(vmId);
      if (st) st.connected = false;
    }
  }

  status(): ShadowStatus[] {
    return [...this.stats.values()].map((s) => ({ ...s }));
  }

  async close(): Promise<void> {
    await Promise.all([...this.sessions.values()].map((s) => s.close()));
  }
}

export class ReceiverSession {
  readonly ready: ReceiverReply;
  private readonly sequence: FrameSequence;
  private awaitingResend = false;
  private failed = false;
  private closed = false;
  private droppedAfterReject = 0;
  /**
   * Epochs are made durable (image synced, epoch persisted) beside the frames that follow, not
   * before them: an fdatasync of a busy guest's epoch took 5-25 ms, and a switchover's flush
   * arriving behind one waited for it inside the guest's pause. Completed epochs that queue up
   * meanwhile share the next sync (the highest is persisted; acks are cumulative).
   */
  private durability: Promise<void> = Promise.resolve();
  private durabilityRunning = false;
  /** Highest completed epoch not yet durable (0: none). */
  private durableWanted = 0;
  /** Highest completed epoch to acknowledge once durable (0: none; flush epochs were acknowledged on apply). */
  private ackWanted = 0;
  /** Where replies decided after handleFrame() returned go (acks of epochs made durable, a failed sync). */
  private lateReply: (r: ReceiverReply) => void = () => undefined;

  constructor(
    private readonly receiver: ReplicationReceiver,
    private readonly req: OpenReplication,
    private readonly image: ShadowImage,
    resumeFromEpoch: number,
    reason: string,
    private readonly stat: ShadowStatus,
    private readonly syncEachEpoch: boolean,
    private readonly log: Logger,
    digest?: ImageDigest,
  ) {
    this.sequence = new FrameSequence(resumeFromEpoch);
    this.ready = { kind: 'ready', resumeFromEpoch, fullResend: resumeFromEpoch === 0, reason, ...(digest ? { digest } : {}) };
  }

  /** Sends the replies that come later than their frame (set it before the first frame). */
  onLateReply(send: (r: ReceiverReply) => void): void {
    this.lateReply = send;
  }

  /**
   * Handles one encoded frame; call sequentially. Returns the reply to send now, if any; an
   * ordinary epoch's ack comes through onLateReply() once the epoch is durable.
   */
  async handleFrame(buf: Buffer): Promise<ReceiverReply | undefined> {
    if (this.closed || this.failed) return undefined;
    let frame: Frame;
    try {
      frame = this.receiver.codec.decode(buf);
      if (frame.vmId !== this.req.vmId || frame.generation !== this.req.generation) {
        throw new FrameError('WRONG_STREAM', `frame of ${frame.vmId}/${frame.generation} on stream ${this.req.vmId}/${this.req.generation}`);
      }
      if (frame.pageSizeBytes !== this.req.pageSizeBytes || frame.imagePageCount * frame.pageSizeBytes !== this.req.imageSizeBytes) {
        throw new FrameError('MALFORMED', 'page size or image size differs from the stream');
      }
      this.sequence.check(frame);
    } catch (err) {
      return this.refuse(err);
    }
    this.awaitingResend = false;
    try {
      await this.image.apply(frame);
      this.sequence.accept(frame);
      this.stat.framesApplied++;
      this.stat.bytesApplied += frame.data.length;
      if (!frame.last) return undefined;
      // Pages of later frames written while an epoch syncs are harmless: the image may hold pages
      // newer than its persisted epoch, and they are sent again after a restart (FORMAT.md).
      this.makeDurableSoon(frame.epoch, !frame.ackOnApply);
      if (frame.ackOnApply) {
        // The pages are in the image (the page cache a shadow QEMU maps): the ack goes now and the
        // epoch becomes durable right after. Should this host go down in between, the shadow comes
        // back at the epoch before, below what it acknowledged, and the source sends it
        // everything again (ShadowLink), so nothing acknowledged is ever missing.
        return { kind: 'ack', epoch: frame.epoch };
      }
      return undefined;
    } catch (err) {
      return this.writeFailed(err);
    }
  }

  private makeDurableSoon(epoch: number, ackWhenDurable: boolean): void {
    this.durableWanted = Math.max(this.durableWanted, epoch);
    if (ackWhenDurable) this.ackWanted = Math.max(this.ackWanted, epoch);
    if (this.durabilityRunning) return;
    this.durabilityRunning = true;
    this.durability = (async () => {
      try {
        while (this.durableWanted > 0 && !this.failed) {
          const epoch = this.durableWanted;
          const ack = this.ackWanted;
          this.durableWanted = 0;
          this.ackWanted = 0;
          await this.makeDurable(epoch);
          if (ack > 0) this.lateReply({ kind: 'ack', epoch: ack });
        }
      } catch (err) {
        this.lateReply(this.writeFailed(err));
      } finally {
        this.durabilityRunning = false;
      }
    })();
  }

  /** The image synced (unless configured off), then the epoch persisted. */
  private async makeDurable(epoch: number): Promise<void> {
    if (this.syncEachEpoch) await this.image.sync();
    await this.receiver.states.put({
      vmId: this.req.vmId,
      generation: this.req.generation,
      epoch,
      imageSizeBytes: this.req.imageSizeBytes,
      pageSizeBytes: this.req.pageSizeBytes,
    });
    this.stat.epoch = epoch;
  }

  private writeFailed(err: unknown): ReceiverReply {
    this.failed = true;
    this.stat.lastError = errorMessage(err);
    this.log.error({ vmId: this.req.vmId, err: errorMessage(err) }, 'shadow image write failed');
    return { kind: 'error', code: err instanceof ShadowDiskFullError ? 'DISK_FULL' : 'IO', detail: errorMessage(err) };
  }

  private refuse(err: unknown): ReceiverReply | undefined {
    if (!(err instanceof FrameError)) throw err;
    if (this.awaitingResend) {
      // Frames already in flight behind a refused one: dropped, the source resends them in order.
      this.droppedAfterReject++;
      return undefined;
    }
    this.awaitingResend = true;
    this.stat.framesRejected++;
    this.stat.lastError = err.message;
    const at = this.sequence.expected();
    this.log.warn({ vmId: this.req.vmId, code: err.code, epoch: at.epoch, index: at.index }, 'frame refused, resend requested');
    return { kind: 'reject', epoch: at.epoch, index: at.index, code: err.code, detail: err.message };
  }

  get appliedEpoch(): number {
    return this.sequence.lastCompletedEpoch;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.receiver.detach(this.req.vmId, this);
    await this.durability; // an epoch acknowledged once applied is made durable before the image closes
    await this.image.close();
  }
}

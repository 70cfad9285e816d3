// Source side of replication for one VM: each round scans the dirty tracker, reads the pages
// once, encodes frames once per distinct page set and fans them out to every shadow link, paced
// by the bandwidth budget. flush() (guest paused) sends the last delta and resolves with the
// final epoch once every shadow has acknowledged it.
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { CompressionBackoff } from '../../shared/compression-backoff';
import type { FrameMeta } from '../../shared/frame-builder';
import { FrameCodec, frameBufferBytes, FRAME_MAX_PAGES, type FrameCodecName } from '../../shared/frame-codec';
import { createLogger } from '../../shared/log';
import type { DirtyTracker, TrackerName } from '../memory/dirty-tracker';
import type { GuestMemory } from '../memory/guest-memory';
import { native } from '../memory/native-binding';
import { FlushIncompleteError } from './errors';
import { FrameBufferPool } from './frame-buffer-pool';
import { computeDigest, differingPages, fdHasher, type ImageDigest } from './image-digest';
import { samePages } from './page-set';
import { RoundPacer } from './round-pacer';
import type { ShadowChannelFactory } from './shadow-channel';
import { ShadowLink, type ShadowLinkStatus } from './shadow-link';

export const DEFAULT_FLUSH_TIMEOUT_MS = 30000;
/** Frames a round may queue ahead of the slowest shadow in its group. */
const QUEUE_AHEAD_FRAMES = 8;
/**
 * Free frame buffers a source keeps at most (about 1 MiB each): enough for the frames in flight
 * (the queue above, the transport's few, HTTP/2's window), trimmed to the last round's frame count.
 */
const POOL_MAX_FREE_BUFFERS = 24;
/**
 * A round hands the event loop back after this much work: a frame whose send queue has room
 * resolves its wait as a microtask, so without it a whole round (tens of ms under a heavy writer)
 * would hold back everything else the agent serves, the switch-out call and QMP answers included.
 */
export const ROUND_YIELD_AFTER_MS = 2;

export interface ShadowTarget {
  /** Shadow host id (names the shadow in status and errors). */
  id: string;
  channelFactory: ShadowChannelFactory;
}

export interface ReplicationSourceOptions {
  vmId: string;
  memory: GuestMemory;
  /** A started tracker (see selectDirtyTracker); the source closes it. */
  tracker: DirtyTracker;
  shadows: ShadowTarget[];
  codec?: FrameCodecName;
  /**
   * Codec of the frames of a flush (guest paused: latency counts, not wire bytes); default `codec`.
   * `none` can win on a link faster than brotli-0 compresses (~600 MB/s per core) when the pages
   * compress poorly; measured on loopback with guests writing compressible data, it lost (67 MB
   * raw instead of 0.2 MB compressed for a heavy 1 GiB guest).
   */
  flushCodec?: FrameCodecName;
  /** Wire bytes per second per shadow; 0 = unlimited (rounds every minIntervalMs). */
  bandwidthBudgetBytesPerSec?: number;
  minRoundIntervalMs?: number;
  maxRoundIntervalMs?: number;
  /** Unacknowledged bytes per shadow before it sits rounds out (its pages stay owed). */
  windowBytes?: number;
  sourceHostId?: string;
  /** No round timer: rounds run only through runRound()/flush() (tests, benchmarks). */
  manualRounds?: boolean;
  log?: Logger;
}

export interface RoundReport {
  epoch: number;
  dirtyPages: number;
  /** Bytes of encoded frames produced (each distinct set counted once). */
  wireBytes: number;
  scanMs: number;
  /** Reading the pages from guest memory. */
  readMs: number;
  /** Zero-page elision, compression, msgpack and checksum. */
  encodeMs: number;
  /** Waiting for the slowest shadow's send queue (back-pressure) inside the round. */
  sendWaitMs: number;
  /** Pages left unsent because a flush cut the round short (the flush sends them). */
  cutPages: number;
  roundMs: number;
  /** Time since the previous round started (the window the dirty pages were written in). */
  sinceLastRoundMs: number;
}

export interface ReplicationSourceStatus {
  vmId: string;
  generation: string;
  tracker: TrackerName;
  epoch: number;
  running: boolean;
  dirtyRateBytesPerSec: number;
  roundIntervalMs: number;
  lastRound?: RoundReport;
  lastFlush?: FlushReport;
  shadows: ShadowLinkStatus[];
}

/** Where a flush's time went (summed over its rounds; usually one). */
export interface FlushReport {
  epoch: number;
  rounds: number;
  dirtyPages: number;
  wireBytes: number;
  scanMs: number;
  readMs: number;
  encodeMs: number;
  /** From the frames being encoded until the transport took the last one (back-pressure included). */
  sendMs: number;
  /** From the last frame handed to the transport until every shadow acknowledged the epoch. */
  ackMs: number;
  totalMs: number;
}

export class ReplicationSource {
  readonly generation = randomUUID();
  private epoch = 0;
  private readonly links = new Map<string, ShadowLink>();
  private readonly codec: FrameCodec;
  private readonly flushCodec: FrameCodec;
  /** Shared by both codecs: what the guest's pages were like in the rounds holds for its flush. */
  private readonly compression = new CompressionBackoff();
  private flushing = false;
  private readonly pacer: RoundPacer;
  private readonly meta: Omit<FrameMeta, 'epoch'>;
  private readonly chunk: Buffer;
  private readonly pool: FrameBufferPool;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private closed = false;
  private roundInFlight: Promise<RoundReport> | undefined;
  /** During a flush for a switchover: the shadows it waits for (the others do not pace its rounds). */
  private flushWaitFor: ReadonlySet<string> | undefined;
  /** Set by flush() to end the background round in flight at its next frame (see round()). */
  private roundCut: { requested: boolean } | undefined;
  private lastRoundAt = Date.now();
  private intervalMs: number;
  private lastRound: RoundReport | undefined;
  private lastFlush: FlushReport | undefined;
  /** Read and encode time of the frames built since the current round started. */
  private readonly phase = { readMs: 0, encodeMs: 0 };
  private readonly waiters = new Set<() => void>();
  private readonly log: Logger;

  constructor(private readonly o: ReplicationSourceOptions) {
    const region = o.memory.region;
    this.codec = new FrameCodec({ checksum: native.xxh64, codec: o.codec });
    this.flushCodec = new FrameCodec({ checksum: native.xxh64, codec: o.flushCodec ?? o.codec });
    this.pacer = new RoundPacer({
      bandwidthBudgetBytesPerSec: o.bandwidthBudgetBytesPerSec ?? 0,
      minIntervalMs: o.minRoundIntervalMs,
      maxIntervalMs: o.maxRoundIntervalMs,
    });
    this.intervalMs = o.minRoundIntervalMs ?? 50;
    this.meta = { vmId: o.vmId, generation: this.generation, pageSizeBytes: region.pageSizeBytes, imagePageCount: o.memory.pageCount };
    this.chunk = Buffer.alloc(FRAME_MAX_PAGES * region.pageSizeBytes);
    this.pool = new FrameBufferPool(frameBufferBytes(this.meta, FRAME_MAX_PAGES), POOL_MAX_FREE_BUFFERS);
    this.log = o.log ?? createLogger('replication-source', { vmId: o.vmId });
    for (const s of o.shadows) this.addShadow(s, false);
  }

  /** Connects every shadow and starts the round loop. */
  start(): void {
    for (const l of this.links.values()) if (l.state === 'connecting') l.connect();
    if (!this.o.manualRounds) this.resume();
  }

  /** Restarts the round loop (after flush(), e.g. when a switchover is rolled back). */
  resume(): void {
    if (this.closed || this.running) return;
    this.running = true;
    this.schedule(0);
  }

  addShadow(target: ShadowTarget, connect = true): void {
    if (this.links.has(target.id)) return;
    const region = this.o.memory.region;
    const link = new ShadowLink({
      id: target.id,
      factory: target.channelFactory,
      open: {
        vmId: this.o.vmId,
        generation: this.generation,
        imageSizeBytes: this.o.memory.pageCount * region.pageSizeBytes,
        pageSizeBytes: region.pageSizeBytes,
        sourceHostId: this.o.sourceHostId,
      },
      pageCount: this.o.memory.pageCount,
      windowBytes: this.o.windowBytes,
      encode: (epoch, index, last, pages) => {
        const buf = this.encode(epoch, index, last, pages);
        this.pool.retain(buf, 1);
        return buf;
      },
      written: (frame) => this.pool.release(frame),
      notify: () => this.wake(),
      compareImage: (theirs) => this.differingFromRam(theirs),
      log: this.log,
    });
    this.links.set(target.id, link);
    if (connect) link.connect();
  }

  /** The pages of guest RAM whose blocks differ from a shadow's digest of its image (read in place, in slices). */
  private async differingFromRam(theirs: ImageDigest): Promise<Uint32Array> {
    const m = this.o.memory;
    const ps = m.region.pageSizeBytes;
    const ours = await computeDigest(m.pageCount * ps, theirs.blockBytes, fdHasher(m.fd, m.region.fileOffsetBytes));
    return differingPages(ours, theirs, ps, m.pageCount);
  }

  removeShadow(id: string): void {
    this.links.get(id)?.close();
    this.links.delete(id);
    this.wake();
  }

  /**
   * Declares shadow `id`'s image invalid: it discards its image state and receives a full copy
   * (from the next round on) while the other shadows keep streaming. False for an unknown shadow.
   */
  resyncShadow(id: string, reason: string): boolean {
    const link = this.links.get(id);
    if (!link) return false;
    link.resync(reason);
    this.wake();
    return true;
  }

  /** Runs one round now (rounds never overlap). */
  async runRound(scan = true): Promise<RoundReport> {
    while (this.roundInFlight) await this.roundInFlight.catch(() => undefined);
    this.roundInFlight = this.round(scan);
    try {
      return await this.roundInFlight;
    } finally {
      this.roundInFlight = undefined;
    }
  }

  /**
   * Right before the guest's pause: waits (up to `maxWaitMs`) for a moment when no round runs and
   * every streaming shadow has acknowledged all it was sent, and stops the rounds right there.
   * Under a heavy writer the shadows are some MB behind what was sent, and a flush queued behind
   * that backlog waits for all of it with the guest paused; from a quiet moment it waits only for
   * its own delta. The rounds go on while it waits (stopping them at once would let the guest's
   * writes pile up for the flush when the shadows are far behind). The loop stays stopped either
   * way: flush() or resume() follows.
   */
  async quiesce(maxWaitMs: number, waitFor?: ReadonlySet<string>): Promise<{ waitedMs: number; drained: boolean }> {
    const t0 = performance.now();
    const deadline = Date.now() + maxWaitMs;
    for (;;) {
      // Checked right after each change (an ack, a round's end), before a round timer can fire.
      const behind = this.linksFor(waitFor).some((l) => l.state === 'streaming' && l.unacknowledged());
      const left = deadline - Date.now();
      if ((!behind && !this.roundInFlight) || left <= 0) {
        this.stopLoop();
        return { waitedMs: performance.now() - t0, drained: !behind && !this.roundInFlight };
      }
      await this.waitForChange(left);
    }
  }

  /**
   * Final delta, with the guest paused: stops the loop, sends what is still dirty or owed, and
   * resolves with the epoch every shadow acknowledged. Throws FlushIncompleteError (naming the
   * shadows) if that does not happen within `timeoutMs`. resume() restarts the loop.
   * `waitFor`: only these shadows' acknowledgements are waited for (a switchover's destination);
   * the others get the same frames without holding the guest's pause.
   */
  async flush(timeoutMs = DEFAULT_FLUSH_TIMEOUT_MS, waitFor?: ReadonlySet<string>): Promise<number> {
    this.stopLoop();
    // The guest is paused: a background round still sending pages it scanned earlier only delays
    // the flush, which sends them (and whatever else is dirty) anyway.
    if (this.roundCut) this.roundCut.requested = true;
    this.flushing = true;
    this.flushWaitFor = waitFor;
    try {
      return await this.flushRounds(timeoutMs);
    } finally {
      this.flushing = false;
      this.flushWaitFor = undefined;
    }
  }

  /** The shadow links `waitFor` names (all when undefined). */
  private linksFor(waitFor?: ReadonlySet<string>): ShadowLink[] {
    const all = [...this.links.values()];
    return waitFor ? all.filter((l) => waitFor.has(l.id)) : all;
  }

  private async flushRounds(timeoutMs: number): Promise<number> {
    const t0 = performance.now();
    const deadline = Date.now() + timeoutMs;
    const f: FlushReport = { epoch: 0, rounds: 0, dirtyPages: 0, wireBytes: 0, scanMs: 0, readMs: 0, encodeMs: 0, sendMs: 0, ackMs: 0, totalMs: 0 };
    for (;;) {
      // The guest is paused: after the first scan nothing new can be dirty, so later rounds (for a
      // shadow that sat the first out) only send what is owed, without scanning all of RAM again.
      const r = await this.runRound(f.rounds === 0);
      const epoch = r.epoch;
      f.rounds++;
      f.dirtyPages += r.dirtyPages;
      f.wireBytes += r.wireBytes;
      f.scanMs += r.scanMs;
      f.readMs += r.readMs;
      f.encodeMs += r.encodeMs;
      const roundEnd = performance.now();
      let sentAt: number | undefined;
      // Wait until every shadow acknowledged this epoch, or one that sat it out can take a new round.
      for (;;) {
        const links = this.linksFor(this.flushWaitFor);
        if (sentAt === undefined && links.every((l) => l.idle())) sentAt = performance.now();
        if (links.every((l) => l.ackedEpoch >= epoch)) {
          const now = performance.now();
          sentAt ??= now;
          f.sendMs += r.sendWaitMs + (sentAt - roundEnd);
          f.ackMs += now - sentAt;
          f.epoch = epoch;
          f.totalMs = now - t0;
          this.lastFlush = f;
          return epoch;
        }
        const needsRound = links.some((l) => !l.hasEpoch(epoch) && l.canSend(true));
        if (needsRound) {
          f.sendMs += r.sendWaitMs + ((sentAt ?? performance.now()) - roundEnd);
          break;
        }
        const left = deadline - Date.now();
        if (left <= 0) throw new FlushIncompleteError(this.o.vmId, epoch, links.filter((l) => l.ackedEpoch < epoch).map((l) => l.id));
        await this.waitForChange(left);
      }
    }
  }

  status(): ReplicationSourceStatus {
    return {
      vmId: this.o.vmId,
      generation: this.generation,
      tracker: this.o.tracker.name,
      epoch: this.epoch,
      running: this.running,
      dirtyRateBytesPerSec: this.pacer.dirtyRateBytesPerSec,
      roundIntervalMs: this.intervalMs,
      lastRound: this.lastRound,
      lastFlush: this.lastFlush,
      shadows: [...this.links.values()].map((l) => l.status()),
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stopLoop();
    await this.roundInFlight?.catch(() => undefined);
    for (const l of this.links.values()) l.close();
    this.o.tracker.close();
    this.wake();
  }

  private stopLoop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(delayMs: number): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.runRound()
        .then((r) => {
          this.intervalMs = this.pacer.next({ dirtyBytes: r.dirtyPages * this.meta.pageSizeBytes, wireBytes: r.wireBytes, elapsedMs: r.sinceLastRoundMs });
          this.schedule(Math.max(0, this.intervalMs - r.roundMs));
        })
        .catch((err) => {
          this.log.error({ err: (err as Error).message }, 'replication round failed');
          this.schedule(this.o.maxRoundIntervalMs ?? 2000);
        });
    }, delayMs);
    this.timer.unref();
  }

  private async round(scan: boolean): Promise<RoundReport> {
    const started = Date.now();
    const elapsed = started - this.lastRoundAt;
    this.lastRoundAt = started;
    const scanStarted = performance.now();
    const dirty = scan ? await this.o.tracker.scan() : new Uint32Array(0);
    const scanMs = performance.now() - scanStarted;
    this.phase.readMs = 0;
    this.phase.encodeMs = 0;
    let sendWaitMs = 0;
    const epoch = ++this.epoch;
    const links = [...this.links.values()];
    for (const l of links) l.addDirty(dirty);
    // Shadows owed the same pages (the common case: all caught up) share one read and one encoding.
    const groups: Array<{ pages: Uint32Array; links: ShadowLink[] }> = [];
    for (const l of links) {
      if (!l.canSend(this.flushing)) continue;
      const pages = l.takeOwed();
      const g = groups.find((x) => samePages(x.pages, pages));
      if (g) g.links.push(l);
      else groups.push({ pages, links: [l] });
    }
    let wireBytes = 0;
    this.pool.trim(groups.reduce((n, g) => n + Math.ceil(g.pages.length / FRAME_MAX_PAGES), 0));
    // Only a background round can be cut; a flush's own rounds must send everything.
    const cut = this.flushing ? undefined : { requested: false };
    this.roundCut = cut;
    let yieldedAt = performance.now();
    let cutPages = 0;
    for (const g of groups) {
      const frames = Math.max(1, Math.ceil(g.pages.length / FRAME_MAX_PAGES));
      for (let f = 0; f < frames; f++) {
        if (cut?.requested) {
          // Cut short: the pages not sent yet are owed again (the flush's scan will not see them a
          // second time), and an empty last frame completes the epoch so its sequence has no gap.
          const rest = g.pages.subarray(f * FRAME_MAX_PAGES);
          for (const l of g.links) l.addDirty(rest);
          cutPages += rest.length;
          const end = this.encode(epoch, f, true, new Uint32Array(0));
          wireBytes += end.length;
          this.pool.retain(end, g.links.length);
          for (const l of g.links) l.enqueue(epoch, f, true, new Uint32Array(0), end);
          break;
        }
        const pages = g.pages.subarray(f * FRAME_MAX_PAGES, (f + 1) * FRAME_MAX_PAGES).slice();
        const buf = this.encode(epoch, f, f === frames - 1, pages);
        wireBytes += buf.length;
        this.pool.retain(buf, g.links.length);
        for (const l of g.links) l.enqueue(epoch, f, f === frames - 1, pages, buf);
        const w0 = performance.now();
        // A flush for a switchover paces itself on its destination only: another shadow's slow
        // transport queues the (small) final delta instead of holding the guest's pause.
        const waitFor = this.flushWaitFor;
        await Promise.all(g.links.filter((l) => !waitFor || waitFor.has(l.id)).map((l) => l.queueBelow(QUEUE_AHEAD_FRAMES)));
        sendWaitMs += performance.now() - w0;
        if (performance.now() - yieldedAt >= ROUND_YIELD_AFTER_MS) {
          await new Promise<void>((r) => setImmediate(r));
          yieldedAt = performance.now();
        }
      }
    }
    if (this.roundCut === cut) this.roundCut = undefined;
    const report: RoundReport = { epoch, dirtyPages: dirty.length, wireBytes, scanMs, readMs: this.phase.readMs, encodeMs: this.phase.encodeMs, sendWaitMs, cutPages, roundMs: Math.max(1, Date.now() - started), sinceLastRoundMs: elapsed };
    this.lastRound = report;
    this.wake();
    return report;
  }

  /** Reads `pages` (sorted) from guest memory now and encodes them as one frame (one copy with codec none). */
  private encode(epoch: number, index: number, last: boolean, pages: Uint32Array): Buffer {
    const ps = this.meta.pageSizeBytes;
    const t0 = performance.now();
    let readMs = 0;
    const codec = this.flushing ? this.flushCodec : this.codec;
    // A flush's frames (guest paused, a switchover waiting) are acknowledged once applied.
    const buf = codec.encodeFrom(
      { ...this.meta, epoch, index, last, ...(this.flushing ? { ackOnApply: true } : {}) },
      pages,
      (into) => {
        const r0 = performance.now();
        let k = 0;
        while (k < pages.length) {
          let run = 1;
          while (k + run < pages.length && pages[k + run] === pages[k] + run) run++;
          this.o.memory.readPages(pages[k], run, into.subarray(k * ps, (k + run) * ps));
          k += run;
        }
        readMs += performance.now() - r0;
      },
      { scratch: this.chunk, alloc: (bytes) => this.pool.alloc(bytes), backoff: this.compression },
    );
    this.phase.readMs += readMs;
    this.phase.encodeMs += performance.now() - t0 - readMs;
    return buf;
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  private waitForChange(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.waiters.delete(done);
        resolve();
      };
      const t = setTimeout(done, timeoutMs);
      t.unref();
      this.waiters.add(done);
    });
  }
}

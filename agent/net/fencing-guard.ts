// Per-VM highest fencing token accepted, persisted through KvStore: an older token is refused, so
// a late command from a superseded switchover can never (de)activate an address.
import { FailedPreconditionError, InvalidArgumentError } from '../../shared/errors';
import type { KvStore } from '../../shared/kv-store';
import { KeyedMutex } from '../../shared/keyed-mutex';
import { StaleFencingTokenError } from './net-errors';

export const FENCING_KEY_PREFIX = 'net/fencing/';
const RECORD_VERSION = 1;

interface FencingRecord {
  version: number;
  token: number;
  acceptedAtMs: number;
}

export interface FencingAdmission {
  token: number;
  /** The highest token accepted before this one, if any. */
  previousToken?: number;
  /** True when the token equals the last accepted one (an idempotent re-apply). */
  reapplied: boolean;
}

/**
 * One guard per store: it keeps the highest token per VM in memory once read or written, so a
 * re-applied token (the activation after a prepare) costs no store access at all.
 */
export class FencingGuard {
  private readonly mutex = new KeyedMutex();
  private readonly accepted = new Map<string, number>();

  constructor(
    private readonly store: KvStore,
    private readonly nowMs: () => number = Date.now,
  ) {}

  /**
   * Accepts `token` for `vmId` if it is not older than the highest accepted so far, and records it
   * durably before returning. Throws StaleFencingTokenError (FAILED_PRECONDITION) otherwise.
   */
  async admit(vmId: string, token: number): Promise<FencingAdmission> {
    if (typeof vmId !== 'string' || vmId.length === 0) throw new InvalidArgumentError('vm_id', 'must be a non-empty string');
    if (typeof token !== 'number' || !Number.isSafeInteger(token) || token < 0) {
      throw new InvalidArgumentError('fencing_token', `must be a non-negative integer, got ${String(token)}`);
    }
    return this.mutex.run(vmId, async () => {
      const previous = await this.current(vmId);
      if (previous !== undefined && token < previous) throw new StaleFencingTokenError(vmId, token, previous);
      if (previous === token) return { token, previousToken: previous, reapplied: true };
      const record: FencingRecord = { version: RECORD_VERSION, token, acceptedAtMs: this.nowMs() };
      await this.store.put(FENCING_KEY_PREFIX + vmId, record);
      this.accepted.set(vmId, token);
      return { token, ...(previous !== undefined ? { previousToken: previous } : {}), reapplied: false };
    });
  }

  /** The highest token accepted for `vmId`, or undefined if none was. */
  async current(vmId: string): Promise<number | undefined> {
    const known = this.accepted.get(vmId);
    if (known !== undefined) return known;
    const rec = await this.store.get<FencingRecord>(FENCING_KEY_PREFIX + vmId);
    if (rec === undefined) return undefined;
    // An unreadable fence must not silently become "no fence": refuse until an operator looks.
    if (typeof rec !== 'object' || rec === null || typeof rec.token !== 'number') {
      throw new FailedPreconditionError(`fencing record of vm '${vmId}' is unreadable; refusing to (de)activate`);
    }
    // Tokens only grow: a read that started before a concurrent admit() wrote must not lower it.
    const highest = Math.max(rec.token, this.accepted.get(vmId) ?? rec.token);
    this.accepted.set(vmId, highest);
    return highest;
  }
}

// Persisted state of each shadow image: which source generation and epoch it holds (KvStore).
import type { KvStore } from '../../shared/kv-store';

export const SHADOW_STATE_VERSION = 1;
const KEY_PREFIX = 'replication/shadow/';

export interface ShadowImageState {
  version: number;
  vmId: string;
  /** Source replication session the epochs belong to. */
  generation: string;
  /** Every page as of this epoch is in the image (0: a full copy is still needed). */
  epoch: number;
  imageSizeBytes: number;
  pageSizeBytes: number;
  updatedAtUnixMs: number;
}

export class ShadowStateStore {
  constructor(private readonly kv: KvStore) {}

  async get(vmId: string): Promise<ShadowImageState | undefined> {
    const s = await this.kv.get<ShadowImageState>(KEY_PREFIX + vmId);
    return s && s.version === SHADOW_STATE_VERSION ? s : undefined;
  }

  async put(state: Omit<ShadowImageState, 'version' | 'updatedAtUnixMs'>, nowMs = Date.now()): Promise<void> {
    await this.kv.put(KEY_PREFIX + state.vmId, { ...state, version: SHADOW_STATE_VERSION, updatedAtUnixMs: nowMs });
  }

  async list(): Promise<ShadowImageState[]> {
    return (await this.kv.list<ShadowImageState>(KEY_PREFIX)).map((e) => e.value).filter((s) => s.version === SHADOW_STATE_VERSION);
  }

  async delete(vmId: string): Promise<void> {
    await this.kv.del(KEY_PREFIX + vmId);
  }
}

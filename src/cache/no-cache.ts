import type { Cache, CachedRows } from './types.js';

/** Caches nothing: every read goes to the master. For comparisons and for tables that must always be live. */
export class NoCache implements Cache {
  readonly kind = 'NoCache';
  async get(_key: string): Promise<CachedRows | undefined> {
    return undefined;
  }
  async put(_key: string, _rows: CachedRows): Promise<void> {}
  async invalidatePrefix(_prefix: string): Promise<void> {}
  async generation(_prefix: string): Promise<number> {
    return 0;
  }
}

import type { Id, Row } from '../types.js';

/** What a cache entry holds: the rows of one page or one row, and when they came from the master. */
export interface CachedRows {
  rows: Array<[Id, Row]>;
  /** Epoch ms when the master returned these rows. */
  fetchedAt: number;
  /** Set by invalidation: the rows may be out of date, but are kept to serve offline (R2). */
  stale?: boolean;
}

/** A key-value store for cached reads. Keys are `${cacheKey}/page_N` and `${cacheKey}/id/ID`. */
export interface Cache {
  get(key: string): Promise<CachedRows | undefined>;
  put(key: string, rows: CachedRows): Promise<void>;
  /** Mark every entry whose key starts with `prefix` as stale. Entries are kept, not deleted. */
  invalidatePrefix(prefix: string): Promise<void>;
  /** Every entry under `prefix` (all when omitted), without its rows: for inspectors. */
  inspect?(prefix?: string): Promise<CacheEntryInfo[]>;
}

export interface CacheEntryInfo {
  key: string;
  rowCount: number;
  fetchedAt: number;
  stale: boolean;
}

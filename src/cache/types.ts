import type { Id, PageRequest, Row } from '../types.js';

/** What a cache entry holds: the rows of one page or one row, and when they came from the master. */
export interface CachedRows {
  rows: Array<[Id, Row]>;
  /** Epoch ms when the master returned these rows. */
  fetchedAt: number;
  /** The rows may be out of date: invalidated since they were fetched. They are kept to serve offline (R2). */
  stale?: boolean;
  /**
   * The table's generation when the load of these rows started (`Cache.generation`).
   * An entry whose generation is older than its table's is stale; `put` with an
   * older one stores it stale (the rows raced an invalidation).
   */
  generation?: number;
}

/**
 * A key-value store for cached reads. Keys are `${cacheKey}/page_N` and
 * `${cacheKey}/id/ID`; `${cacheKey}/`, up to the first "/", is the key's table.
 * Each table has a generation: invalidating a table bumps it, in constant time
 * whatever the number of entries, and an entry fetched under an older
 * generation reads as stale. The generation lives in the cache itself, so every
 * writer of the same cache (two service workers during an update) agrees.
 */
export interface Cache {
  /** What the cache is, for inspectors ("IdbCache"); class names do not survive minification. */
  readonly kind?: string;
  /** The entry, with `stale` set when its table was invalidated since it was fetched. */
  get(key: string): Promise<CachedRows | undefined>;
  /**
   * The entry (as `get` reads it) and its table's current generation, read
   * together: a miss then loads under that generation without reading it again.
   */
  lookup?(key: string): Promise<CacheLookup>;
  /** Store an entry; stored stale when `rows.generation` is older than its table's generation. */
  put(key: string, rows: CachedRows): Promise<void>;
  /** Mark every entry of a table stale, in constant time; `prefix` is the table's `${cacheKey}/`. Entries are kept. */
  invalidatePrefix(prefix: string): Promise<void>;
  /** The current generation of a table (`prefix`: its `${cacheKey}/`); read it before loading rows and pass it to `put`. */
  generation(prefix: string): Promise<number>;
  /** The keys of the fresh entries under `prefix` (a table's), read without their rows: where a write looks for its row's version. */
  freshKeys?(prefix: string): Promise<string[]>;
  /** Every entry under `prefix` (all when omitted), without its rows: for inspectors. */
  inspect?(prefix?: string): Promise<CacheEntryInfo[]>;
  /** Change the byte budget (caches with a budget); takes effect at the next put. */
  setBudget?(bytes: number): void;
  /** Size, budget and evictions (caches with a budget). */
  usage?(): Promise<CacheUsage>;
  /** Keep `pin.keys` whatever the budget: they are never evicted. Pinning the same id again replaces it. */
  pin?(pin: CachePin): Promise<void>;
  /** Let a pin's keys be evicted again. */
  unpin?(id: string): Promise<void>;
  /** The pins whose id starts with `prefix` (all when omitted). */
  pins?(prefix?: string): Promise<CachePin[]>;
}

/** What `Cache.lookup` reads in one step. */
export interface CacheLookup {
  entry: CachedRows | undefined;
  /** The table's generation when the entry was read: pass it to `put` with rows loaded after it. */
  generation: number;
}

/** Keys kept available offline: never evicted. */
export interface CachePin {
  /** Starts with its table's `${cacheKey}/`. */
  id: string;
  keys: string[];
  /** What was pinned, for people ("pages 1-20"). */
  label: string;
  pinnedAt: number;
}

/** How full a cache is. */
export interface CacheUsage {
  /** Bytes of rows held, measured as stored. */
  bytes: number;
  entries: number;
  budgetBytes: number;
  /** Entries evicted since the cache was opened (budget and quota). */
  evicted: number;
  /** Set once the browser refused a put for lack of quota: the cache gave way (evicted) so the write queue has room. */
  quotaPressure?: { at: number; evicted: number };
}

export interface CacheEntryInfo {
  key: string;
  rowCount: number;
  fetchedAt: number;
  stale: boolean;
  /** Size as stored (caches with a budget). */
  bytes?: number;
  /** Under a pin: never evicted. */
  pinned?: boolean;
}

/** The table part of a cache key: up to and including its first "/" ("" for a key without one). */
export function tableOf(key: string): string {
  return key.slice(0, key.indexOf('/') + 1);
}

/** Whether an entry reads as stale under its table's current generation. */
export function isStale(entry: Pick<CachedRows, 'stale' | 'generation'>, current: number): boolean {
  return !!entry.stale || (entry.generation ?? 0) < current;
}

/**
 * The cache key of a read of `req` from a table cached under `cacheKey`:
 * `${cacheKey}/page_N` (with `_ipp_M` when the ipp is not `masterIpp`), or
 * `${cacheKey}/all` when `req` names no page. Undefined for a request that is
 * no page (page and ipp are integers from 1).
 */
export function readKey(cacheKey: string, masterIpp: number, req?: Partial<PageRequest>): { key: string; page?: number; ipp: number } | undefined {
  const page = req?.page ?? (req?.ipp ? 1 : undefined);
  const ipp = req?.ipp ?? masterIpp;
  if (page === undefined) return { key: `${cacheKey}/all`, ipp };
  if (!(Number.isInteger(page) && page >= 1 && Number.isInteger(ipp) && ipp >= 1)) return undefined;
  return { key: ipp === masterIpp ? `${cacheKey}/page_${page}` : `${cacheKey}/page_${page}_ipp_${ipp}`, page, ipp };
}

/** The cache key of one row: `${cacheKey}/id/${id}`. */
export function rowKey(cacheKey: string, id: Id): string {
  return `${cacheKey}/id/${id}`;
}

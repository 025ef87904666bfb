/**
 * Offline-ready on purpose: prefetch fills a table's cache ahead of use, pins
 * keep page ranges whatever the budget, and pinned pages that go stale are
 * refetched in the background while online, one page at a time and only
 * while no user read is waiting for the master.
 */
import type { Cache, CachePin, CacheUsage } from './cache/types.js';
import type { Env } from './env.js';
import { errorInfo, InvalidInputError, isTransient, type ErrorInfo } from './errors.js';
import { logger } from './log.js';

const log = logger('vantage-live:prefetch');

/** Which pages: a range ("1-20", "7", or `{ from, to }`), or the whole table up to `maxRows` rows. */
export interface PageRange {
  /** "1-20", "7", or `{ from, to }` (1-based, inclusive). Omitted: the whole table up to `maxRows`. */
  pages?: string | { from: number; to: number };
  /** With no `pages`: the whole table, up to this many rows; default 10,000. */
  maxRows?: number;
}

export interface PrefetchOptions extends PageRange {
  /** Pin the pages too: never evicted, refreshed in the background once invalidated. */
  pin?: boolean;
  /** Names this prefetch in its `prefetch` events and for `cancelPrefetch`; default a new id. */
  id?: string;
}

/** How a prefetch ended. */
export interface PrefetchResult {
  id: string;
  /** Pages fetched or found fresh in the cache. */
  done: number;
  total: number;
  rows: number;
  state: 'done' | 'cancelled' | 'failed';
  error?: ErrorInfo;
}

/** One prefetch's progress, in page order; the last one has `state` other than `running`. */
export type PrefetchEvent = Omit<PrefetchResult, 'state'> & { state: 'running' | PrefetchResult['state'] };

/** A pinned range and how fresh its pages are. */
export interface PinStatus {
  id: string;
  label: string;
  pages: number;
  fresh: number;
  stale: number;
  /** Pages not in the cache (not fetched yet, or past the end of the table). */
  missing: number;
  /** Epoch ms of the oldest fetch among its cached pages. */
  oldestFetchedAt?: number;
}

/** A table's readiness for offline use: what `offlineStatus` answers. */
export interface OfflineStatus {
  cache?: CacheUsage;
  pins: PinStatus[];
  /** Epoch ms when the last background refresh of pinned pages ended. */
  lastRefreshAt?: number;
}

/** What the offline helpers need of their LiveTable. */
export interface OfflineHost {
  readonly cacheKey: string;
  readonly masterIpp: number;
  readonly cache: Cache;
  readonly env: Env;
  pageCacheKey(page: number, ipp?: number): string;
  /** Fetch one page from the master into the cache; resolves with its row count. */
  fetchPage(page: number): Promise<number>;
  /** Resolves once no user read is waiting for the master. */
  readsIdle(): Promise<void>;
  /** Resolves once the rows reads already answered are in the cache (a miss answers before its put). */
  stored(): Promise<void>;
  /** Keep a worker awake for background work. */
  track(work: Promise<unknown>): void;
  emitPrefetch(event: PrefetchEvent): void;
  emitRefreshed(cacheKey: string): void;
  readonly closed: boolean;
}

/** Pages `from..to` of a range, checked. With no `pages`, every page that can hold `maxRows` rows. */
export function pagesOf(range: PageRange, ipp: number): { from: number; to: number; whole: boolean } {
  if (range.pages === undefined) {
    const maxRows = range.maxRows ?? 10_000;
    if (!Number.isInteger(maxRows) || maxRows < 1) throw new InvalidInputError(`Invalid maxRows ${JSON.stringify(range.maxRows)}: an integer from 1`);
    return { from: 1, to: Math.ceil(maxRows / ipp), whole: true };
  }
  const [from, to] =
    typeof range.pages === 'string' ? (/^(\d+)(?:-(\d+))?$/.exec(range.pages.trim())?.slice(1).map((n) => (n === undefined ? undefined : Number(n))) ?? []) : [range.pages?.from, range.pages?.to];
  const end = to ?? from;
  if (!Number.isInteger(from) || !Number.isInteger(end) || from! < 1 || end! < from!) {
    throw new InvalidInputError(`Invalid pages ${JSON.stringify(range.pages)}: a range like "1-20" or { from: 1, to: 20 }, from page 1`);
  }
  return { from: from!, to: end!, whole: false };
}

/** One table's prefetches, pins and background refreshes. */
export class OfflineReady {
  private readonly running = new Map<string, AbortController>();
  private refreshing: Promise<void> | undefined;
  private refreshAgain = false;
  private lastRefreshAt: number | undefined;
  // Whether this table has pins, once looked up: invalidations of a table without pins (most of them) then cost nothing here.
  private hasPins: boolean | undefined;

  constructor(private readonly host: OfflineHost) {}

  /** Fill the cache with pages ahead of use, in page order, with a `prefetch` event after each. Pages already fresh are not fetched again. */
  async prefetch(opts: PrefetchOptions = {}, signal?: AbortSignal): Promise<PrefetchResult> {
    const { host } = this;
    const { from, to, whole } = pagesOf(opts, host.masterIpp);
    const id = opts.id ?? host.env.newId();
    const abort = new AbortController();
    signal?.addEventListener('abort', () => abort.abort());
    if (signal?.aborted) abort.abort();
    this.running.set(id, abort);
    const pin = opts.pin ? await this.pinPages(pinId(host.cacheKey, from, to, whole), pinLabel(opts, from, to, whole), from, to) : undefined;
    const progress: PrefetchEvent = { id, done: 0, total: to - from + 1, rows: 0, state: 'running' };
    await host.stored();
    const fresh = new Map((await host.cache.inspect?.(`${host.cacheKey}/`))?.filter((e) => !e.stale).map((e) => [e.key, e.rowCount]));
    try {
      for (let page = from; page <= to; page++) {
        if (abort.signal.aborted) return this.end(progress, 'cancelled');
        await host.readsIdle();
        const rows = fresh.get(host.pageCacheKey(page)) ?? (await host.fetchPage(page));
        progress.done++;
        progress.rows += rows;
        // The whole table ends at its first short page.
        if (whole && rows < host.masterIpp) {
          progress.total = progress.done;
          if (pin) await this.pinPages(pin.id, pin.label, from, page);
          break;
        }
        if (page < to) host.emitPrefetch({ ...progress });
      }
      return this.end(progress, 'done');
    } catch (err) {
      log.warn('prefetch failed', { cacheKey: host.cacheKey, error: errorInfo(err) });
      return this.end(progress, 'failed', errorInfo(err));
    } finally {
      this.running.delete(id);
    }
  }

  private end(progress: PrefetchEvent, state: PrefetchResult['state'], error?: ErrorInfo): PrefetchResult {
    const result: PrefetchResult = { ...progress, state, ...(error ? { error } : {}) };
    this.host.emitPrefetch(result);
    return result;
  }

  /** Start a prefetch and answer at once with its id: its progress and end come as `prefetch` events (the bridge's way). */
  // Starting an id that is running does nothing: a page whose prefetch went quiet starts it again, and only a
  // worker that was stopped meanwhile (and so forgot it) runs it anew, skipping the pages it already fetched.
  start(opts: PrefetchOptions = {}): { id: string } {
    const id = opts.id ?? this.host.env.newId();
    pagesOf(opts, this.host.masterIpp); // bad input fails the call, not the background work
    if (this.running.has(id)) return { id };
    this.host.track(this.prefetch({ ...opts, id }));
    return { id };
  }

  /** Stop a prefetch between two pages; pages fetched so far stay. Unknown or finished ids are ignored. */
  cancel(id: string): void {
    this.running.get(id)?.abort();
  }

  /** Keep pages available offline: never evicted, refetched in the background after an invalidation. Pages not cached yet are prefetched in the background. */
  async pin(range: PageRange): Promise<CachePin> {
    const { from, to, whole } = pagesOf(range, this.host.masterIpp);
    const pin = await this.pinPages(pinId(this.host.cacheKey, from, to, whole), pinLabel(range, from, to, whole), from, to);
    this.host.track(this.prefetch({ ...range, pin: true }));
    return pin;
  }

  private async pinPages(id: string, label: string, from: number, to: number): Promise<CachePin> {
    const { host } = this;
    if (!host.cache.pin) throw new InvalidInputError(`This table's cache (${host.cache.kind ?? 'custom'}) cannot pin entries`);
    const keys = Array.from({ length: to - from + 1 }, (_, i) => host.pageCacheKey(from + i));
    const pin: CachePin = { id, keys, label, pinnedAt: host.env.now() };
    await host.cache.pin(pin);
    this.hasPins = true;
    return pin;
  }

  /** Let a pinned range be evicted again; `id` is the pin's (from `offlineStatus`). */
  async unpin(id: string): Promise<void> {
    if (!id.startsWith(`${this.host.cacheKey}/`)) throw new InvalidInputError(`Pin ${JSON.stringify(id)} is not one of table ${this.host.cacheKey}'s`);
    await this.host.cache.unpin?.(id);
    this.hasPins = undefined;
  }

  /** Cache size and budget, each pinned range and how fresh it is, and the last background refresh. */
  async status(): Promise<OfflineStatus> {
    const { cache, cacheKey } = this.host;
    await this.host.stored();
    const [usage, pins, entries] = await Promise.all([cache.usage?.(), cache.pins?.(`${cacheKey}/`) ?? [], cache.inspect?.(`${cacheKey}/`) ?? []]);
    const byKey = new Map(entries.map((e) => [e.key, e]));
    return {
      ...(usage ? { cache: usage } : {}),
      pins: pins.map((pin) => {
        const cached = pin.keys.map((k) => byKey.get(k)).filter((e) => e !== undefined);
        const stale = cached.filter((e) => e.stale).length;
        const oldest = Math.min(...cached.map((e) => e.fetchedAt));
        return {
          id: pin.id,
          label: pin.label,
          pages: pin.keys.length,
          fresh: cached.length - stale,
          stale,
          missing: pin.keys.length - cached.length,
          ...(cached.length ? { oldestFetchedAt: oldest } : {}),
        };
      }),
      ...(this.lastRefreshAt === undefined ? {} : { lastRefreshAt: this.lastRefreshAt }),
    };
  }

  /**
   * Refetch pinned pages that are stale, in the background, while
   * online: one page at a time, each after user reads waiting for the master.
   * Called after every invalidation; calls during a refresh make it look again
   * once done. Resolves when the refresh ends.
   */
  refreshSoon(): Promise<void> {
    if (this.refreshing) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    const work = (async () => {
      do {
        this.refreshAgain = false;
        await this.refreshOnce();
      } while (this.refreshAgain && !this.host.closed);
    })()
      .catch((err) => log.debug('background refresh of pinned pages stopped', { cacheKey: this.host.cacheKey, error: errorInfo(err) }))
      .finally(() => (this.refreshing = undefined));
    this.refreshing = work;
    this.host.track(work);
    return work;
  }

  private async refreshOnce(): Promise<void> {
    const { host } = this;
    if (!host.cache.pins || this.hasPins === false || !host.env.isOnline()) return;
    const pins = await host.cache.pins(`${host.cacheKey}/`);
    this.hasPins = pins.length > 0;
    if (pins.length === 0) return;
    const entries = new Map(((await host.cache.inspect?.(`${host.cacheKey}/`)) ?? []).map((e) => [e.key, e]));
    const pages = [...new Set(pins.flatMap((p) => p.keys))]
      .filter((key) => entries.get(key)?.stale === true)
      .map((key) => pageOf(key, host.cacheKey))
      .filter((page) => page !== undefined)
      .sort((a, b) => a - b);
    for (const page of pages) {
      if (host.closed || !host.env.isOnline()) return;
      await host.readsIdle();
      try {
        await host.fetchPage(page);
      } catch (err) {
        if (isTransient(err)) return; // the master is out of reach: the next invalidation, `online` or periodic sync tries again
        throw err;
      }
      host.emitRefreshed(host.pageCacheKey(page));
    }
    this.lastRefreshAt = host.env.now();
  }
}

function pinId(cacheKey: string, from: number, to: number, whole: boolean): string {
  return `${cacheKey}/pin:${whole ? 'all' : `${from}-${to}`}`;
}

function pinLabel(range: PageRange, from: number, to: number, whole: boolean): string {
  return whole ? `the whole table, up to ${range.maxRows ?? 10_000} rows` : from === to ? `page ${from}` : `pages ${from}-${to}`;
}

/** The page number of a page key of this table at its master ipp; undefined for other keys. */
function pageOf(key: string, cacheKey: string): number | undefined {
  const m = /^page_(\d+)$/.exec(key.slice(cacheKey.length + 1));
  return m ? Number(m[1]) : undefined;
}

import type { DBSchema, IDBPTransaction, StoreNames } from 'idb';
import { IdbConnection } from '../idb-connection.js';
import { StorageFullError, storageError } from '../errors.js';
import { checkBudget, DEFAULT_BUDGET_BYTES, entryBytes, EVICT_TO, evictionOrder, type BudgetOptions, type EntryUse } from './budget.js';
import { isStale, tableOf, type Cache, type CacheEntryInfo, type CacheLookup, type CachedRows, type CachePin, type CacheUsage } from './types.js';

interface CacheSchema extends DBSchema {
  entries: { key: string; value: CachedRows & { key: string } };
  /** Each table's generation, by its `${cacheKey}/`. */
  generations: { key: string; value: number };
  /** Each entry's size and last read, by its key: small, so eviction reads them all without the rows. */
  uses: { key: string; value: EntryUse };
  /** Pins by id. */
  pins: { key: string; value: CachePin };
}

/** The version of the cache's database; pages that read it themselves (src/bridge/page-reads.ts) read only this one. */
export const CACHE_SCHEMA_VERSION = 3;

type Tx = IDBPTransaction<CacheSchema, Array<StoreNames<CacheSchema>>, 'readwrite'>;

/**
 * A cache in IndexedDB: survives reloads and browser restarts, shared by every
 * tab and the service worker of an origin. Writes use the browser's default
 * (relaxed) durability on purpose: a cache entry lost in a crash is refetched,
 * unlike a queued write. Invalidating a table writes one number, its
 * generation, however many entries it has.
 *
 * The budget: each entry's size is kept beside it; over the budget, puts evict
 * the least recently read unpinned entries. A read stays one read-only
 * transaction: its time is noted in memory and written with the next put or
 * eviction (a worker stopped in between loses only that ordering hint). When
 * the browser refuses a put for lack of quota the cache gives way first: it
 * evicts half of itself and tries once more, and skips storing if that fails
 * too, so the write queue (another database) keeps the room it needs.
 */
export class IdbCache implements Cache {
  readonly kind = 'IdbCache';
  private readonly conn: IdbConnection<CacheSchema>;
  private budget: number;
  private readonly now: () => number;
  // Reads not yet written to `uses`, by key.
  private readonly touched = new Map<string, number>();
  // Bytes held, known after the first put or eviction of this instance (another writer may change it; eviction recounts).
  private total: number | undefined;
  private evicted = 0;
  private pressure: CacheUsage['quotaPressure'];

  /** @param dbName the IndexedDB database to keep entries in. */
  constructor(dbName = 'vantage-live-cache', opts: BudgetOptions = {}) {
    this.budget = checkBudget(opts.budgetBytes ?? DEFAULT_BUDGET_BYTES);
    this.now = opts.now ?? Date.now;
    this.conn = new IdbConnection<CacheSchema>(dbName, CACHE_SCHEMA_VERSION, (db, oldVersion, _newVersion, tx) => {
      if (oldVersion < 1) db.createObjectStore('entries', { keyPath: 'key' });
      // Version 2: generations. Entries of version 1 have none, which reads as generation 0: as fresh as they were.
      if (oldVersion < 2) db.createObjectStore('generations');
      // Version 3: sizes, last reads and pins; entries kept from before are measured now.
      if (oldVersion < 3) {
        const uses = db.createObjectStore('uses');
        db.createObjectStore('pins', { keyPath: 'id' });
        if (oldVersion >= 1) {
          void (async () => {
            for (let c = await tx.objectStore('entries').openCursor(); c; c = await c.continue()) {
              await uses.put({ bytes: entryBytes(c.value.rows), readAt: c.value.fetchedAt }, c.value.key);
            }
          })();
        }
      }
    });
  }

  /** The database's name (a wipe deletes it). */
  get dbName(): string {
    return this.conn.name;
  }

  /** Change the budget; takes effect at the next put. */
  setBudget(bytes: number): void {
    this.budget = checkBudget(bytes);
  }

  async get(key: string): Promise<CachedRows | undefined> {
    return (await this.lookup(key)).entry;
  }

  async lookup(key: string): Promise<CacheLookup> {
    const tx = (await this.conn.get()).transaction(['entries', 'generations']);
    const [entry, generation = 0] = await Promise.all([tx.objectStore('entries').get(key), tx.objectStore('generations').get(tableOf(key))]);
    if (!entry) return { entry: undefined, generation };
    this.touched.set(key, this.now());
    const read: CachedRows = { rows: entry.rows, fetchedAt: entry.fetchedAt };
    return { entry: isStale(entry, generation) ? { ...read, stale: true } : read, generation };
  }

  async put(key: string, rows: CachedRows): Promise<void> {
    const bytes = entryBytes(rows.rows);
    try {
      await this.store(key, rows, bytes);
    } catch (err) {
      if (!(storageError(err) instanceof StorageFullError)) throw storageError(err);
      const before = this.evicted;
      await this.evict(Math.floor((await this.usage()).bytes / 2));
      this.pressure = { at: this.now(), evicted: this.evicted - before };
      try {
        await this.store(key, rows, bytes);
      } catch (again) {
        if (!(storageError(again) instanceof StorageFullError)) throw storageError(again);
        return; // still no room: the rows are served uncached rather than take the queue's room
      }
    }
    if ((this.total ?? 0) > this.budget) await this.evict(Math.floor(this.budget * EVICT_TO));
  }

  private async store(key: string, rows: CachedRows, bytes: number): Promise<void> {
    const tx = (await this.conn.get()).transaction(['entries', 'generations', 'uses'], 'readwrite');
    try {
      const current = (await tx.objectStore('generations').get(tableOf(key))) ?? 0;
      const stale = !!rows.stale || (rows.generation ?? current) < current;
      const old = await tx.objectStore('uses').get(key);
      await tx.objectStore('entries').put({ key, rows: rows.rows, fetchedAt: rows.fetchedAt, stale, generation: current });
      await tx.objectStore('uses').put({ bytes, readAt: this.now(), generation: current, stale }, key);
      this.touched.delete(key);
      await this.writeTouches(tx);
      await tx.done;
      this.total = this.total === undefined ? await this.count() : this.total + bytes - (old?.bytes ?? 0);
    } catch (err) {
      await tx.done.catch(() => {});
      throw err;
    }
  }

  // The last reads noted since the last write, onto entries that still exist.
  private async writeTouches(tx: Tx): Promise<void> {
    const touches = [...this.touched];
    this.touched.clear();
    const uses = tx.objectStore('uses');
    await Promise.all(
      touches.map(async ([key, readAt]) => {
        const use = await uses.get(key);
        if (use && use.readAt < readAt) await uses.put({ ...use, readAt }, key);
      }),
    );
  }

  private async count(): Promise<number> {
    const uses = await (await this.conn.get()).getAll('uses');
    return uses.reduce((n, u) => n + u.bytes, 0);
  }

  /** Evict unpinned entries, least recently read first, until the cache holds at most `targetBytes`. */
  async evict(targetBytes: number): Promise<void> {
    const tx = (await this.conn.get()).transaction(['entries', 'uses', 'pins', 'generations'], 'readwrite');
    try {
      await this.writeTouches(tx);
      const [keys, values, pins] = await Promise.all([tx.objectStore('uses').getAllKeys(), tx.objectStore('uses').getAll(), tx.objectStore('pins').getAll()]);
      const uses = new Map(keys.map((k, i) => [k, values[i]!]));
      const gone = evictionOrder(uses, new Set(pins.flatMap((p) => p.keys)), targetBytes);
      await Promise.all(gone.flatMap((key) => [tx.objectStore('entries').delete(key), tx.objectStore('uses').delete(key)]));
      await tx.done;
      this.evicted += gone.length;
      this.total = [...uses].reduce((n, [k, u]) => (gone.includes(k) ? n : n + u.bytes), 0);
    } catch (err) {
      await tx.done.catch(() => {});
      throw storageError(err);
    }
  }

  async invalidatePrefix(prefix: string): Promise<void> {
    const tx = (await this.conn.get()).transaction('generations', 'readwrite');
    try {
      await tx.store.put(((await tx.store.get(prefix)) ?? 0) + 1, prefix);
      await tx.done;
    } catch (err) {
      await tx.done.catch(() => {});
      throw storageError(err);
    }
  }

  async generation(prefix: string): Promise<number> {
    return (await (await this.conn.get()).get('generations', prefix)) ?? 0;
  }

  async freshKeys(prefix: string): Promise<string[]> {
    const tx = (await this.conn.get()).transaction(['uses', 'generations']);
    const [keys, uses, current = 0] = await Promise.all([
      tx.objectStore('uses').getAllKeys(prefixRange(prefix)),
      tx.objectStore('uses').getAll(prefixRange(prefix)),
      tx.objectStore('generations').get(tableOf(prefix)),
    ]);
    // A use written before uses kept the marks may be fresh: it is listed, and its entry tells.
    return keys.filter((_, i) => uses[i]!.generation === undefined || !isStale(uses[i]!, current));
  }

  async inspect(prefix = ''): Promise<CacheEntryInfo[]> {
    const tx = (await this.conn.get()).transaction(['entries', 'generations', 'uses', 'pins']);
    const [entries, tables, generations, useKeys, useValues, pins] = await Promise.all([
      tx.objectStore('entries').getAll(prefixRange(prefix)),
      tx.objectStore('generations').getAllKeys(),
      tx.objectStore('generations').getAll(),
      tx.objectStore('uses').getAllKeys(prefixRange(prefix)),
      tx.objectStore('uses').getAll(prefixRange(prefix)),
      tx.objectStore('pins').getAll(),
    ]);
    const current = new Map(tables.map((t, i) => [t, generations[i]!]));
    const bytes = new Map(useKeys.map((k, i) => [k, useValues[i]!.bytes]));
    const pinned = new Set(pins.flatMap((p) => p.keys));
    return entries.map((e) => ({
      key: e.key,
      rowCount: e.rows.length,
      fetchedAt: e.fetchedAt,
      stale: isStale(e, current.get(tableOf(e.key)) ?? 0),
      bytes: bytes.get(e.key) ?? 0,
      pinned: pinned.has(e.key),
    }));
  }

  async usage(): Promise<CacheUsage> {
    const uses = await (await this.conn.get()).getAll('uses');
    this.total = uses.reduce((n, u) => n + u.bytes, 0);
    return { bytes: this.total, entries: uses.length, budgetBytes: this.budget, evicted: this.evicted, ...(this.pressure ? { quotaPressure: this.pressure } : {}) };
  }

  async pin(pin: CachePin): Promise<void> {
    try {
      await (await this.conn.get()).put('pins', pin);
    } catch (err) {
      throw storageError(err);
    }
  }

  async unpin(id: string): Promise<void> {
    await (await this.conn.get()).delete('pins', id);
  }

  async pins(prefix = ''): Promise<CachePin[]> {
    return (await this.conn.get()).getAll('pins', prefixRange(prefix));
  }

  /** Close the database connection (tests, a wipe); the next call opens it again. */
  close(): Promise<void> {
    return this.conn.close();
  }
}

// U+FFFF sorts after every character a key can hold, so [prefix, prefix + U+FFFF] is the prefix's range.
function prefixRange(prefix: string): IDBKeyRange | undefined {
  return prefix ? IDBKeyRange.bound(prefix, `${prefix}\uffff`) : undefined;
}

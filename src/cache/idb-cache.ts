import type { DBSchema } from 'idb';
import { IdbConnection } from '../idb-connection.js';
import { storageError } from '../errors.js';
import { isStale, tableOf, type Cache, type CacheEntryInfo, type CachedRows } from './types.js';

interface CacheSchema extends DBSchema {
  entries: { key: string; value: CachedRows & { key: string } };
  /** Each table's generation, by its `${cacheKey}/`. */
  generations: { key: string; value: number };
}

/**
 * A cache in IndexedDB: survives reloads and browser restarts, shared by every
 * tab and the service worker of an origin. Writes use the browser's default
 * (relaxed) durability on purpose: a cache entry lost in a crash is refetched,
 * unlike a queued write. Invalidating a table writes one number, its
 * generation, however many entries it has.
 */
export class IdbCache implements Cache {
  readonly kind = 'IdbCache';
  private readonly conn: IdbConnection<CacheSchema>;

  /** @param dbName the IndexedDB database to keep entries in. */
  constructor(dbName = 'vantage-live-cache') {
    this.conn = new IdbConnection<CacheSchema>(dbName, 2, (db, oldVersion) => {
      if (oldVersion < 1) db.createObjectStore('entries', { keyPath: 'key' });
      // Version 2: generations. Entries of version 1 have none, which reads as generation 0: as fresh as they were.
      if (oldVersion < 2) db.createObjectStore('generations');
    });
  }

  /** The database's name (a wipe deletes it). */
  get dbName(): string {
    return this.conn.name;
  }

  async get(key: string): Promise<CachedRows | undefined> {
    const tx = (await this.conn.get()).transaction(['entries', 'generations']);
    const [entry, current = 0] = await Promise.all([tx.objectStore('entries').get(key), tx.objectStore('generations').get(tableOf(key))]);
    if (!entry) return undefined;
    const read: CachedRows = { rows: entry.rows, fetchedAt: entry.fetchedAt };
    return isStale(entry, current) ? { ...read, stale: true } : read;
  }

  async put(key: string, rows: CachedRows): Promise<void> {
    const tx = (await this.conn.get()).transaction(['entries', 'generations'], 'readwrite');
    try {
      const current = (await tx.objectStore('generations').get(tableOf(key))) ?? 0;
      const stale = !!rows.stale || (rows.generation ?? current) < current;
      await tx.objectStore('entries').put({ key, rows: rows.rows, fetchedAt: rows.fetchedAt, stale, generation: current });
      await tx.done;
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

  async inspect(prefix = ''): Promise<CacheEntryInfo[]> {
    const tx = (await this.conn.get()).transaction(['entries', 'generations']);
    const [entries, tables, generations] = await Promise.all([
      tx.objectStore('entries').getAll(prefixRange(prefix)),
      tx.objectStore('generations').getAllKeys(),
      tx.objectStore('generations').getAll(),
    ]);
    const current = new Map(tables.map((t, i) => [t, generations[i]!]));
    return entries.map((e) => ({ key: e.key, rowCount: e.rows.length, fetchedAt: e.fetchedAt, stale: isStale(e, current.get(tableOf(e.key)) ?? 0) }));
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

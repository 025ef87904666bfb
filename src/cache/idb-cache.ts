import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import { storageError } from '../errors.js';
import type { Cache, CacheEntryInfo, CachedRows } from './types.js';

interface CacheSchema extends DBSchema {
  entries: { key: string; value: CachedRows & { key: string } };
}

/**
 * A cache in IndexedDB: survives reloads and browser restarts, shared by every
 * tab and the service worker of an origin. Writes use the browser's default
 * (relaxed) durability on purpose: a cache entry lost in a crash is refetched,
 * unlike a queued write.
 */
export class IdbCache implements Cache {
  private readonly db: Promise<IDBPDatabase<CacheSchema>>;

  /** @param dbName the IndexedDB database to keep entries in. */
  constructor(dbName = 'vantage-live-cache') {
    this.db = openDB<CacheSchema>(dbName, 1, {
      upgrade(db) {
        db.createObjectStore('entries', { keyPath: 'key' });
      },
      // A newer worker is upgrading the schema: let go, or its upgrade would wait for this connection forever.
      blocking: () => void this.db.then((db) => db.close()),
    });
  }

  async get(key: string): Promise<CachedRows | undefined> {
    const entry = await (await this.db).get('entries', key);
    if (!entry) return undefined;
    const { key: _key, ...rows } = entry;
    return rows;
  }

  async put(key: string, rows: CachedRows): Promise<void> {
    try {
      await (await this.db).put('entries', { ...rows, key });
    } catch (err) {
      throw storageError(err);
    }
  }

  // Keys are the store's primary key, which IndexedDB keeps sorted, so every
  // key under a prefix lies in one contiguous range: the cursor visits only
  // those entries, never other tables' or other views'.
  async invalidatePrefix(prefix: string): Promise<void> {
    const tx = (await this.db).transaction('entries', 'readwrite');
    for (let cursor = await tx.store.openCursor(prefixRange(prefix)); cursor; cursor = await cursor.continue()) {
      if (!cursor.value.stale) await cursor.update({ ...cursor.value, stale: true });
    }
    await tx.done.catch((err) => Promise.reject(storageError(err)));
  }

  async inspect(prefix = ''): Promise<CacheEntryInfo[]> {
    const entries = await (await this.db).getAll('entries', prefixRange(prefix));
    return entries.map((e) => ({ key: e.key, rowCount: e.rows.length, fetchedAt: e.fetchedAt, stale: !!e.stale }));
  }

  /** Close the database connection (tests, and a worker that is about to be replaced). */
  async close(): Promise<void> {
    (await this.db).close();
  }
}

// U+FFFF sorts after every character a key can hold, so [prefix, prefix + U+FFFF] is the prefix's range.
function prefixRange(prefix: string): IDBKeyRange | undefined {
  return prefix ? IDBKeyRange.bound(prefix, `${prefix}\uffff`) : undefined;
}

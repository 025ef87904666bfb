import type { Cache, CacheEntryInfo, CachedRows } from './types.js';

/** A cache in a Map: fast, shared by everything in one JS realm, gone on reload. */
export class MemCache implements Cache {
  private readonly entries = new Map<string, CachedRows>();

  async get(key: string): Promise<CachedRows | undefined> {
    const entry = this.entries.get(key);
    return entry && structuredClone(entry);
  }

  async put(key: string, rows: CachedRows): Promise<void> {
    this.entries.set(key, structuredClone(rows));
  }

  // Scans the keys of this cache only; a MemCache holds one app's working set.
  async invalidatePrefix(prefix: string): Promise<void> {
    for (const [key, entry] of this.entries) if (key.startsWith(prefix)) entry.stale = true;
  }

  async inspect(prefix = ''): Promise<CacheEntryInfo[]> {
    return [...this.entries]
      .filter(([key]) => key.startsWith(prefix))
      .map(([key, e]) => ({ key, rowCount: e.rows.length, fetchedAt: e.fetchedAt, stale: !!e.stale }));
  }
}

import { isStale, tableOf, type Cache, type CacheEntryInfo, type CachedRows } from './types.js';

/** A cache in a Map: fast, shared by everything in one JS realm, gone on reload. */
export class MemCache implements Cache {
  readonly kind = 'MemCache';
  private readonly entries = new Map<string, CachedRows>();
  private readonly generations = new Map<string, number>();

  async get(key: string): Promise<CachedRows | undefined> {
    const entry = this.entries.get(key);
    return entry && this.asRead(key, entry);
  }

  async put(key: string, rows: CachedRows): Promise<void> {
    const current = this.current(tableOf(key));
    const stale = !!rows.stale || (rows.generation ?? current) < current;
    this.entries.set(key, { rows: structuredClone(rows.rows), fetchedAt: rows.fetchedAt, stale, generation: current });
  }

  async invalidatePrefix(prefix: string): Promise<void> {
    this.generations.set(prefix, this.current(prefix) + 1);
  }

  async generation(prefix: string): Promise<number> {
    return this.current(prefix);
  }

  async inspect(prefix = ''): Promise<CacheEntryInfo[]> {
    return [...this.entries]
      .filter(([key]) => key.startsWith(prefix))
      .map(([key, e]) => ({ key, rowCount: e.rows.length, fetchedAt: e.fetchedAt, stale: !!this.asRead(key, e).stale }));
  }

  private current(prefix: string): number {
    return this.generations.get(prefix) ?? 0;
  }

  private asRead(key: string, entry: CachedRows): CachedRows {
    const read: CachedRows = { rows: structuredClone(entry.rows), fetchedAt: entry.fetchedAt };
    return isStale(entry, this.current(tableOf(key))) ? { ...read, stale: true } : read;
  }
}

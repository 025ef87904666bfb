import { checkBudget, DEFAULT_BUDGET_BYTES, entryBytes, EVICT_TO, evictionOrder, type BudgetOptions, type EntryUse } from './budget.js';
import { isStale, tableOf, type Cache, type CacheEntryInfo, type CacheLookup, type CachedRows, type CachePin, type CacheUsage } from './types.js';

/** A cache in a Map: fast, shared by everything in one JS realm, gone on reload. It keeps the same budget as IdbCache. */
export class MemCache implements Cache {
  readonly kind = 'MemCache';
  private readonly entries = new Map<string, CachedRows>();
  private readonly generations = new Map<string, number>();
  private readonly uses = new Map<string, EntryUse>();
  private readonly pinned = new Map<string, CachePin>();
  private budget: number;
  private readonly now: () => number;
  private evicted = 0;

  constructor(opts: BudgetOptions = {}) {
    this.budget = checkBudget(opts.budgetBytes ?? DEFAULT_BUDGET_BYTES);
    this.now = opts.now ?? Date.now;
  }

  /** Change the budget; takes effect at the next put. */
  setBudget(bytes: number): void {
    this.budget = checkBudget(bytes);
  }

  async get(key: string): Promise<CachedRows | undefined> {
    return (await this.lookup(key)).entry;
  }

  async lookup(key: string): Promise<CacheLookup> {
    const entry = this.entries.get(key);
    const generation = this.current(tableOf(key));
    if (!entry) return { entry: undefined, generation };
    this.uses.get(key)!.readAt = this.now();
    return { entry: this.asRead(key, entry), generation };
  }

  async put(key: string, rows: CachedRows): Promise<void> {
    const current = this.current(tableOf(key));
    const stale = !!rows.stale || (rows.generation ?? current) < current;
    this.entries.set(key, { rows: structuredClone(rows.rows), fetchedAt: rows.fetchedAt, stale, generation: current });
    this.uses.set(key, { bytes: entryBytes(rows.rows), readAt: this.now() });
    if (this.bytes() > this.budget) await this.evict(Math.floor(this.budget * EVICT_TO));
  }

  /** Evict unpinned entries, least recently read first, until the cache holds at most `targetBytes`. */
  async evict(targetBytes: number): Promise<void> {
    const gone = evictionOrder(this.uses, new Set([...this.pinned.values()].flatMap((p) => p.keys)), targetBytes);
    for (const key of gone) {
      this.entries.delete(key);
      this.uses.delete(key);
    }
    this.evicted += gone.length;
  }

  async invalidatePrefix(prefix: string): Promise<void> {
    this.generations.set(prefix, this.current(prefix) + 1);
  }

  async generation(prefix: string): Promise<number> {
    return this.current(prefix);
  }

  async freshKeys(prefix: string): Promise<string[]> {
    return [...this.entries].filter(([key, e]) => key.startsWith(prefix) && !isStale(e, this.current(tableOf(key)))).map(([key]) => key);
  }

  async inspect(prefix = ''): Promise<CacheEntryInfo[]> {
    const pinned = new Set([...this.pinned.values()].flatMap((p) => p.keys));
    return [...this.entries]
      .filter(([key]) => key.startsWith(prefix))
      .map(([key, e]) => ({
        key,
        rowCount: e.rows.length,
        fetchedAt: e.fetchedAt,
        stale: isStale(e, this.current(tableOf(key))),
        bytes: this.uses.get(key)!.bytes,
        pinned: pinned.has(key),
      }));
  }

  async usage(): Promise<CacheUsage> {
    return { bytes: this.bytes(), entries: this.entries.size, budgetBytes: this.budget, evicted: this.evicted };
  }

  async pin(pin: CachePin): Promise<void> {
    this.pinned.set(pin.id, structuredClone(pin));
  }

  async unpin(id: string): Promise<void> {
    this.pinned.delete(id);
  }

  async pins(prefix = ''): Promise<CachePin[]> {
    return [...this.pinned.values()].filter((p) => p.id.startsWith(prefix)).map((p) => structuredClone(p));
  }

  private bytes(): number {
    let total = 0;
    for (const use of this.uses.values()) total += use.bytes;
    return total;
  }

  private current(prefix: string): number {
    return this.generations.get(prefix) ?? 0;
  }

  private asRead(key: string, entry: CachedRows): CachedRows {
    const read: CachedRows = { rows: structuredClone(entry.rows), fetchedAt: entry.fetchedAt };
    return isStale(entry, this.current(tableOf(key))) ? { ...read, stale: true } : read;
  }
}

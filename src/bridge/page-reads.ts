/**
 * Reads a page answers without the worker (README, "Reads in the page"), in
 * two levels: what this tab read, kept in memory, and below it the fresh
 * entries of the worker's cache, read straight from IndexedDB. Each answers
 * only what the worker would answer the same; anything else (a miss, a stale
 * entry, pending writes, a user it cannot check, an input the worker must
 * judge) is left to the worker.
 *
 * Memory stays coherent through the events every tab hears: any change of
 * the table (a write queued, applied or dead, an invalidation, a refetch)
 * empties it, another user or another worker forgets it together with the
 * plan. A read that was under way when a change was heard is neither kept
 * nor, when the page was answering it, answered: the worker answers it.
 */
import { readKey, rowKey, type CachedRows } from '../cache/types.js';
import { idProblem } from '../ids.js';
import type { LiveTableEvent, ReadResult } from '../live-table.js';
import type { Id, PageRequest } from '../types.js';
import type { PageReadPlan } from './protocol.js';

/** Reads a tab keeps in memory per table, by default. */
export const PAGE_READ_ENTRIES = 100;

export interface PageReadsOptions {
  /** Ask the worker for the table's plan (`read-plan`). */
  plan(): Promise<PageReadPlan | null>;
  /** Read a fresh entry from the worker's databases (default: `readFresh`, src/bridge/page-idb.ts). */
  readFresh(plan: PageReadPlan, key: string): Promise<CachedRows | undefined>;
  /** Open the plan's databases ahead of the first read. */
  prepare?(plan: PageReadPlan): void;
  now(): number;
  /** Reads kept in memory, at most; the least recently used goes first. Default PAGE_READ_ENTRIES. */
  maxEntries?: number;
}

export class PageReads {
  // By cache key, least recently used first.
  private readonly memory = new Map<string, ReadResult>();
  private readonly maxEntries: number;
  // Bumped by every change heard: a read that straddles one is not kept, and not answered by the page.
  private changes = 0;
  // Bumped when the plan must be asked for again: a plan asked for before is not taken.
  private resets = 0;
  // undefined: not known (not asked yet, asked, or the asking failed); null: the worker said the page cannot.
  private plan: PageReadPlan | null | undefined;
  private asking = false;

  constructor(private readonly opts: PageReadsOptions) {
    this.maxEntries = opts.maxEntries ?? PAGE_READ_ENTRIES;
  }

  /** A mark to pass to `keep`: what was heard so far. */
  get mark(): number {
    return this.changes;
  }

  /**
   * The cache key of a read the page may answer: `read(req)` or `readOne(id)`.
   * Undefined before the plan is known (the first read asks for it), when the
   * page cannot read this table, and for an input the worker must refuse.
   */
  keyOf(method: 'read' | 'readOne', arg: unknown): string | undefined {
    this.warm();
    const plan = this.plan;
    if (!plan) return undefined;
    if (method === 'read') return readKey(plan.cacheKey, plan.masterIpp, arg as Partial<PageRequest> | undefined)?.key;
    return idProblem(arg) === undefined ? rowKey(plan.cacheKey, arg as Id) : undefined;
  }

  /** What this tab read under `key`, if it is still what the worker would answer. */
  kept(key: string): ReadResult | undefined {
    const result = this.memory.get(key);
    if (!result) return undefined;
    this.memory.delete(key);
    if (this.tooOld(result)) return undefined;
    this.memory.set(key, result);
    return result;
  }

  /** The fresh entry under `key`, read from IndexedDB, as the worker would answer it; undefined: ask the worker. */
  async fromIdb(key: string): Promise<ReadResult | undefined> {
    const plan = this.plan;
    if (!plan) return undefined;
    const mark = this.changes;
    const entry = await this.opts.readFresh(plan, key);
    if (!entry || this.changes !== mark || this.plan !== plan) return undefined;
    const result: ReadResult = { rows: entry.rows, cacheKey: key, source: 'cache', stale: false, revalidating: false, fetchedAt: entry.fetchedAt, pendingIds: [], conflicts: [] };
    if (this.tooOld(result)) return undefined;
    this.keep(result, mark);
    return result;
  }

  /**
   * Keep what the worker answered, for the next read of the same key, unless a
   * change was heard since `mark` or the answer is one a later read would not
   * repeat (stale, revalidating). Kept as the hit it is from now on.
   */
  keep(result: ReadResult, mark: number): void {
    const plan = this.plan;
    if (this.changes !== mark || !plan || result.stale || result.revalidating || !result.cacheKey.startsWith(`${plan.cacheKey}/`)) return;
    this.memory.delete(result.cacheKey);
    this.memory.set(result.cacheKey, result.source === 'cache' ? result : { ...result, source: 'cache' });
    for (const key of this.memory.keys()) {
      if (this.memory.size <= this.maxEntries) break;
      this.memory.delete(key);
    }
  }

  /** One of the table's events, from any tab. */
  hear(event: LiveTableEvent): void {
    switch (event.type) {
      case 'stream':
      case 'auth':
      case 'retrying': // the op stays pending: what reads show is unchanged
        return;
      case 'read':
        // Another read's hit changes nothing; a miss or a refetch stored new rows under its key.
        if (event.outcome === 'hit') return;
        this.changes++;
        this.memory.delete(event.cacheKey);
        return;
      default:
        this.changed();
    }
  }

  /** The table changed, or may have (a write or an invalidation from this tab): forget every read. */
  changed(): void {
    this.changes++;
    this.memory.clear();
  }

  /** Another user, or another worker: forget every read and the plan, which is asked for again at the next read. */
  reset(): void {
    this.resets++;
    this.plan = undefined;
    this.changed();
  }

  /** Ask for the plan now, if it is not known, so that it (and its databases) may be ready by the first read. */
  warm(): void {
    if (this.plan === undefined) void this.ask();
  }

  private async ask(): Promise<void> {
    if (this.asking) return;
    this.asking = true;
    const resets = this.resets;
    try {
      const plan = await this.opts.plan();
      if (this.resets !== resets) return;
      this.plan = plan;
      if (plan) this.opts.prepare?.(plan);
    } catch {
      // The worker could not say (no one signed in, no such table): the next read asks again.
    } finally {
      this.asking = false;
    }
  }

  private tooOld(result: ReadResult): boolean {
    const maxAgeMs = this.plan?.maxAgeMs;
    return maxAgeMs !== undefined && this.opts.now() - result.fetchedAt > maxAgeMs;
  }
}

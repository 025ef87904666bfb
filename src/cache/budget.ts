/**
 * The cache's budget: how an entry's size is measured, and which entries go
 * when the cache is over its budget or the browser is out of quota. Both
 * caches (IdbCache, MemCache) decide with these functions.
 */
import { InvalidInputError } from '../errors.js';
import type { Id, Row } from '../types.js';

/** The default budget of a cache: 50 MiB of rows, measured as stored. */
export const DEFAULT_BUDGET_BYTES = 50 * 1024 * 1024;

/** Over its budget, a cache evicts down to this share of it, so the next few puts do not each evict again. */
export const EVICT_TO = 0.9;

/** Budget options of a cache. */
export interface BudgetOptions {
  /** Bytes of rows the cache may hold; default DEFAULT_BUDGET_BYTES. */
  budgetBytes?: number;
  /** The clock for last-read times; default Date.now. */
  now?: () => number;
}

/** Size and last read of one entry, kept beside it (reading it never rewrites the entry). */
export interface EntryUse {
  bytes: number;
  /** Epoch ms of the last read (or the put, for an entry not read since). */
  readAt: number;
  /** The entry's freshness marks as stored (absent in uses written before they were kept): see `isStale`. */
  generation?: number;
  stale?: boolean;
}

/** An entry's size as stored: its rows as UTF-8 JSON, the form structured clone keeps them in, near enough. */
export function entryBytes(rows: Array<[Id, Row]>): number {
  return new TextEncoder().encode(JSON.stringify(rows)).length;
}

/** Check a budget given by an app. */
export function checkBudget(bytes: number): number {
  if (!Number.isFinite(bytes) || bytes < 0) throw new InvalidInputError(`Invalid cache budget ${bytes}: use a number of bytes from 0`);
  return bytes;
}

/**
 * The keys to evict so that `uses` fit in `targetBytes`: unpinned entries,
 * least recently read first. Pinned entries are never chosen, even when they
 * alone are over the target.
 */
export function evictionOrder(uses: Map<string, EntryUse>, pinned: ReadonlySet<string>, targetBytes: number): string[] {
  let total = 0;
  for (const use of uses.values()) total += use.bytes;
  const candidates = [...uses].filter(([key]) => !pinned.has(key)).sort((a, b) => a[1].readAt - b[1].readAt || (a[0] < b[0] ? -1 : 1));
  const out: string[] = [];
  for (const [key, use] of candidates) {
    if (total <= targetBytes) break;
    out.push(key);
    total -= use.bytes;
  }
  return out;
}

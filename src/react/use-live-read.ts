/**
 * Reads as React state: a page of a table or one row, re-read when the table's
 * events say the answer may have changed (`LiveQuery` coalesces them).
 */
import { useMemo, useSyncExternalStore } from 'react';
import type { ClientReadResult, LiveTableClient } from '../bridge/page.js';
import type { LiveTableEvent, ReadOptions } from '../live-table.js';
import type { Id, PageRequest, Row } from '../types.js';
import { LiveQuery, type LiveQueryState } from './live-query.js';

/** The table methods a read hook uses: a `LiveTableClient`, or anything shaped like one (a test's fake). */
export type ReadableTable<R extends Row> = Pick<LiveTableClient<R>, 'read' | 'readOne' | 'subscribe'>;

export type LiveRead<T> = LiveQueryState<T> & {
  /** Read again now (or once more after the read in flight). */
  refetch(): void;
};

/**
 * Whether an event can change a read whose last answer was `data`: a write
 * queued, applied, given its id, dead or retried changes what the overlay
 * shows; an invalidation or a background refresh changes the cached rows.
 */
export function affectsRead(e: LiveTableEvent, data: ClientReadResult<Row> | undefined): boolean {
  switch (e.type) {
    case 'queued':
    case 'applied':
    case 'assigned':
    case 'dead':
    case 'retried':
      return true;
    case 'invalidated':
      return data === undefined || data.cacheKey.startsWith(e.prefix);
    case 'refreshed':
      return data === undefined || data.cacheKey === e.cacheKey;
    default:
      return false;
  }
}

/**
 * A page of `table`, kept current: `{ data, error, isLoading, isFetching, refetch }`.
 * `data` is the whole read (`rows`, `stale`, `pendingIds`, `source`, ...).
 *
 * @param table from `connectLiveTable<Row>(name)`
 * @param req the page; compared by value, so an inline object does not re-read on every render
 * @param opts read options (freshness), compared by value
 */
export function useLivePage<R extends Row>(table: ReadableTable<R>, req?: Partial<PageRequest>, opts?: ReadOptions): LiveRead<ClientReadResult<R>> {
  const key = JSON.stringify([req ?? null, opts ?? null]);
  const query = useMemo(
    () =>
      new LiveQuery<ClientReadResult<R>>({
        read: () => table.read(req, opts),
        subscribe: (listener) => table.subscribe(listener),
        affects: affectsRead,
      }),
    // `req` and `opts` count by value, through `key`.
    [table, key],
  );
  const state = useSyncExternalStore(query.subscribe, query.getSnapshot, query.getSnapshot);
  return { ...state, refetch: query.refetch };
}

/** One row as a page sees it, with the read it came from (`stale`, `pendingIds`, ...). */
export type LiveRow<R extends Row> = LiveRead<R> & { result: ClientReadResult<R> | undefined };

/**
 * One row of `table`, kept current: `data` is the row, or undefined while
 * loading and when there is no such row.
 */
export function useLiveRow<R extends Row>(table: ReadableTable<R>, id: Id, opts?: ReadOptions): LiveRow<R> {
  const key = JSON.stringify(opts ?? null);
  const query = useMemo(
    () =>
      new LiveQuery<ClientReadResult<R>>({
        read: () => table.readOne(id, opts),
        subscribe: (listener) => table.subscribe(listener),
        affects: affectsRead,
      }),
    [table, id, key],
  );
  const state = useSyncExternalStore(query.subscribe, query.getSnapshot, query.getSnapshot);
  const row = state.data?.rows.find(([rowId]) => rowId === id)?.[1];
  return { ...state, data: row, result: state.data, refetch: query.refetch };
}
